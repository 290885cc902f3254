/**
 * The OpenAPI document tells the truth: a third-party validator
 * (@readme/openapi-parser) accepts what the server serves, and a client driven
 * only by that document (operationId → path, schemas → checks) runs every
 * operation against the real server, each reply matching the documented
 * response schema and status.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dereference, validate } from '@readme/openapi-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

type Json = Record<string, unknown>;
interface Operation {
  operationId: string;
  path: string;
  requestSchema: Json;
  responses: Record<string, { content?: { 'application/json'?: { schema?: Json } } }>;
}

let s: TestServer;
let doc: Json;
let operations: Map<string, Operation>;
const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));

/** Calls an operation by its operationId, as a generic OpenAPI client would: the document says where. */
async function callOperation(operationId: string, body: unknown): Promise<{ status: number; body: Json }> {
  const op = operations.get(operationId);
  if (op === undefined) throw new Error(`no operation ${operationId} in the document`);
  const res = await fetch(`${s.url}${op.path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as Json;
  const response = op.responses[String(res.status)] ?? op.responses.default;
  expect(response, `${operationId}: status ${res.status} is not documented`).toBeDefined();
  const schema = response?.content?.['application/json']?.schema;
  expect(schema, `${operationId}: no schema for status ${res.status}`).toBeDefined();
  const check = ajv.compile(schema as Json);
  expect(
    check(json),
    `${operationId} ${res.status}: ${ajv.errorsText(check.errors)}\n${JSON.stringify(json)}`,
  ).toBe(true);
  return { status: res.status, body: json };
}

beforeAll(async () => {
  s = await startTestServer();
  await mkdir(join(s.root, 'dir'), { recursive: true });
  await writeFile(join(s.root, 'dir/hello.txt'), 'hello');
  doc = (await (await fetch(`${s.url}/openapi.json`)).json()) as Json;
  const deref = (await dereference(structuredClone(doc) as never)) as unknown as {
    paths: Record<string, { post?: Json }>;
  };
  operations = new Map();
  for (const [path, item] of Object.entries(deref.paths)) {
    const post = item.post as
      | (Json & { requestBody?: { content: Record<string, { schema: Json }> } })
      | undefined;
    if (post === undefined) continue;
    operations.set(post.operationId as string, {
      operationId: post.operationId as string,
      path,
      requestSchema: post.requestBody?.content['application/json']?.schema ?? {},
      responses: post.responses as Operation['responses'],
    });
  }
});
afterAll(async () => {
  expect(s.leaks()).toEqual([]);
  await s.close();
});

describe('the served OpenAPI document', () => {
  it('is valid OpenAPI for @readme/openapi-parser', async () => {
    const result = await validate(structuredClone(doc) as never);
    expect(result.valid, JSON.stringify(result)).toBe(true);
  });

  it('is valid as served in YAML too', async () => {
    const text = await (await fetch(`${s.url}/openapi.yaml`)).text();
    const { parse } = await import('yaml');
    const result = await validate(parse(text));
    expect(result.valid, JSON.stringify(result)).toBe(true);
  });

  it('documents the Idempotency-Key and Rpc-Timeout-Ms headers and error responses on every method', async () => {
    const deref = (await dereference(structuredClone(doc) as never)) as unknown as {
      paths: Record<string, { post: { parameters?: { name: string; in: string }[]; responses: Json } }>;
    };
    for (const [path, item] of Object.entries(deref.paths)) {
      if (!path.startsWith('/v1/')) continue;
      const names = (item.post.parameters ?? []).filter((p) => p.in === 'header').map((p) => p.name);
      expect(names, path).toEqual(expect.arrayContaining(['Idempotency-Key', 'Rpc-Timeout-Ms']));
      expect(Object.keys(item.post.responses), path).toEqual(expect.arrayContaining(['200', '400', '404']));
    }
  });
});

describe('a client driven by the OpenAPI document', () => {
  it('finds an operation for every method path', () => {
    expect([...operations.keys()].filter((id) => id !== 'jsonrpc').sort()).toEqual(
      [
        'Directories_ListDirectory',
        'Directories_MakeDirectory',
        'Directories_Remove',
        'Directories_Stat',
        'Files_RemoteClose',
        'Files_RemoteOpen',
        'Files_RemotePrint',
        'Files_RemoteRead',
        'Leases_Grant',
        'Leases_KeepAlive',
        'Leases_Revoke',
        'Leases_TimeToLive',
      ].sort(),
    );
  });

  it('sends only requests its request schemas accept, and every reply matches the documented response', async () => {
    const requests: [string, Json][] = [];
    const run = async (operationId: string, body: Json) => {
      const op = operations.get(operationId) as Operation;
      const check = ajv.compile(op.requestSchema);
      expect(check(body), `${operationId} request: ${ajv.errorsText(check.errors)}`).toBe(true);
      requests.push([operationId, body]);
      return callOperation(operationId, body);
    };
    expect((await run('Directories_MakeDirectory', { path: 'made' })).status).toBe(200);
    expect((await run('Directories_ListDirectory', { path: 'dir', pageSize: 10 })).body.entries).toHaveLength(
      1,
    );
    expect((await run('Directories_Stat', { path: 'dir/hello.txt' })).body.size).toBe(5);
    const opened = await run('Files_RemoteOpen', { path: 'made/out.txt', mode: 'write', create: true });
    const handle = opened.body.handle as string;
    const leaseId = (opened.body.lease as Json).leaseId as string;
    expect(
      (await run('Files_RemotePrint', { handle, data: 'aGk=', encoding: 'base64' })).body.bytesWritten,
    ).toBe(2);
    expect((await run('Leases_KeepAlive', { leaseId })).status).toBe(200);
    expect((await run('Leases_TimeToLive', { leaseId })).body.handles).toEqual([handle]);
    expect((await run('Files_RemoteClose', { handle })).status).toBe(200);
    const reader = await run('Files_RemoteOpen', { path: 'made/out.txt', mode: 'read' });
    expect((await run('Files_RemoteRead', { handle: reader.body.handle as string })).body.data).toBe('hi');
    const granted = await run('Leases_Grant', { ttlMs: 5_000 });
    expect(
      (await run('Leases_Revoke', { leaseId: (granted.body.lease as Json).leaseId as string })).status,
    ).toBe(200);
    expect((await run('Directories_Remove', { path: 'made', recursive: true })).status).toBe(200);
    expect(requests).toHaveLength(13);
  });

  it('gets documented error replies (status and ErrorBody schema) for failures', async () => {
    const cases: [string, Json, number][] = [
      ['Directories_Stat', { path: 'nope' }, 404],
      ['Directories_Stat', {}, 400],
      ['Directories_MakeDirectory', { path: 'dir' }, 409],
      ['Directories_Stat', { path: '../up' }, 403],
      ['Directories_Remove', { path: 'dir' }, 400],
      ['Files_RemoteRead', { handle: 'h_nope' }, 404],
    ];
    for (const [operationId, body, status] of cases) {
      const r = await callOperation(operationId, body);
      expect(r.status, `${operationId} ${JSON.stringify(body)}`).toBe(status);
      expect(r.body.code).toEqual(expect.any(String));
    }
  });

  it('can call JSON-RPC through the document’s /jsonrpc operation', async () => {
    const r = await callOperation('jsonrpc', {
      jsonrpc: '2.0',
      id: 1,
      method: 'Directories.Stat',
      params: { path: 'dir' },
    });
    expect(r.body).toMatchObject({ id: 1, result: { isDirectory: true } });
  });
});
