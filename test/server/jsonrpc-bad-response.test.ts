/**
 * An implementation whose result does not fit its response schema (a bug in
 * the user's code) answers that call with an internal error; over JSON-RPC
 * the other calls of its batch still run and answer, each under its own id.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
let runs = 0;

beforeAll(async () => {
  const method = (name: string) => ({
    name,
    localName: name.toLowerCase(),
    request: 'Empty',
    response: 'Note',
    idempotent: false,
    description: `Broken.${name}`,
  });
  s = await startTestServer({
    logLevel: 'silent',
    services: [
      {
        definitions: {
          services: {
            Broken: {
              name: 'Broken',
              localName: 'broken',
              description: 'One method that keeps to its schema, one that does not.',
              methods: { Good: method('Good'), Bad: method('Bad') },
            },
          },
          schemas: {
            $id: 'broken.json',
            definitions: {
              Empty: { type: 'object', properties: {} },
              Note: { type: 'object', properties: { title: { type: 'string' } }, required: ['title'] },
            },
          },
        },
        implementations: {
          Broken: {
            good: () => {
              runs++;
              return { title: 'ok' };
            },
            // The required title is missing.
            bad: () => {
              runs++;
              return { body: 'no title' };
            },
          },
        },
      },
    ],
  });
});
afterAll(async () => {
  await s.close();
});

describe('a result that does not fit the response schema', () => {
  it('answers that call of a batch with -32603 under its own id, and the others normally', async () => {
    const before = runs;
    const reply = await s.jsonrpc([
      { jsonrpc: '2.0', id: 1, method: 'Broken.Good', params: {} },
      { jsonrpc: '2.0', id: 2, method: 'Broken.Bad', params: {} },
      { jsonrpc: '2.0', id: 3, method: 'Broken.Good', params: {} },
    ]);
    expect(reply.status).toBe(200);
    const answers = reply.body as {
      id: number;
      result?: unknown;
      error?: { code: number; data?: { code: string } };
    }[];
    expect(answers.map((a) => a.id)).toEqual([1, 2, 3]);
    expect(answers[0]?.result).toEqual({ title: 'ok' });
    expect(answers[1]?.error?.code).toBe(-32603);
    expect(answers[1]?.error?.data?.code).toBe('internal');
    expect(answers[2]?.result).toEqual({ title: 'ok' });
    expect(runs - before).toBe(3);
  });

  it('keeps the id of a single call', async () => {
    const reply = await s.jsonrpc({ jsonrpc: '2.0', id: 'x', method: 'Broken.Bad', params: {} });
    expect(reply.body).toMatchObject({ jsonrpc: '2.0', id: 'x', error: { code: -32603 } });
  });

  it('stores the answer of a keyed batch whose calls ran, so a retry runs nothing again', async () => {
    const batch = [
      { jsonrpc: '2.0', id: 1, method: 'Broken.Good', params: {} },
      { jsonrpc: '2.0', id: 2, method: 'Broken.Bad', params: {} },
    ];
    const before = runs;
    const first = await s.jsonrpc(batch, { 'idempotency-key': 'bad-response-batch' });
    const retry = await s.jsonrpc(batch, { 'idempotency-key': 'bad-response-batch' });
    expect(runs - before).toBe(2);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.text).toBe(first.text);
  });

  it('answers 500 internal on the per-method transport', async () => {
    const reply = await s.post('Broken.Bad', {});
    expect(reply.status).toBe(500);
    expect(reply.body).toMatchObject({ code: 'internal' });
  });
});
