/**
 * A user's own services, generated from their own schemas into a temporary
 * folder, served beside the built-in ones by buildServer and called over both
 * transports, with validation from their schemas and their paths in the
 * served documents.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../client/index.js';
import type { ServiceDefinitions, ServiceTable } from '../../common/service-table.js';
import type { CallContext } from '../../server/index.js';
import { startTestServer, type TestServer, transports } from '../helpers/server.js';
import { generateUserService } from '../helpers/user-service.js';

let dir: string;
let s: TestServer;
let userServices: ServiceTable;
let counter = 0;
const contexts: CallContext[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leasegate-user-'));
  const { outDir } = await generateUserService(dir);
  const { services } = (await import(pathToFileURL(join(outDir, 'services.ts')).href)) as {
    services: ServiceTable;
  };
  const { schemaBundle } = (await import(pathToFileURL(join(outDir, 'schemas.ts')).href)) as {
    schemaBundle: ServiceDefinitions['schemas'];
  };
  userServices = services;
  s = await startTestServer({
    services: [
      {
        definitions: { services, schemas: schemaBundle },
        implementations: {
          Greeter: {
            sayHello: async (req: { name: string }, ctx: CallContext) => {
              contexts.push(ctx);
              return { greeting: `hello ${req.name}`, ignored: 'not in the response schema' };
            },
          },
          Counter: {
            increment: (req: { by: number }) => {
              counter += req.by;
              return { value: counter };
            },
            get: () => ({ value: counter }),
          },
        },
      },
    ],
  });
});
afterAll(async () => {
  expect(s.leaks()).toEqual([]);
  await s.close();
  await rm(dir, { recursive: true, force: true });
});

describe.each(transports)('a user service over %s', (t) => {
  it('answers its calls with the caller’s context', async () => {
    expect(await s.ok(t, 'Greeter.SayHello', { name: 'Ada' })).toMatchObject({ greeting: 'hello Ada' });
    expect(contexts.at(-1)).toMatchObject({ principal: 'anonymous', readOnly: false });
  });

  it('serialises answers through the response schema, dropping undeclared fields', async () => {
    expect(await s.ok(t, 'Greeter.SayHello', { name: 'Ada' })).toEqual({ greeting: 'hello Ada' });
  });

  it('validates requests with its schemas, naming the field', async () => {
    const missing = await s.call(t, 'Greeter.SayHello', {});
    expect([missing.code, missing.reason, missing.field]).toEqual([
      'invalid_argument',
      'missing_field',
      'name',
    ]);
    const empty = await s.call(t, 'Greeter.SayHello', { name: '' });
    expect([empty.code, empty.field]).toEqual(['invalid_argument', 'name']);
    const zero = await s.call(t, 'Counter.Increment', { by: 0 });
    expect([zero.code, zero.field]).toEqual(['invalid_argument', 'by']);
  });

  it('ignores unknown fields and fills defaults from its schemas', async () => {
    expect(await s.ok(t, 'Greeter.SayHello', { name: 'Bo', shout: true })).toMatchObject({
      greeting: 'hello Bo',
    });
    const before = (await s.ok(t, 'Counter.Get', {})).value as number;
    expect(await s.ok(t, 'Counter.Increment', {})).toEqual({ value: before + 1 });
    expect(await s.ok(t, 'Counter.Increment', { by: 5 })).toEqual({ value: before + 6 });
  });

  it('leaves the built-in services in place', async () => {
    expect(await s.ok(t, 'Directories.Stat', { path: '/' })).toMatchObject({ isDirectory: true });
  });
});

describe('the served documents', () => {
  it('list the user’s paths beside the built-in ones in /openapi.json', async () => {
    const doc = (await s.send('GET', '/openapi.json')).body as {
      paths: Record<string, { post?: { operationId?: string } }>;
    };
    expect(doc.paths['/v1/Greeter/SayHello']?.post?.operationId).toBe('Greeter_SayHello');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/Counter/Increment',
        '/v1/Counter/Get',
        '/v1/Files/RemoteOpen',
        '/jsonrpc',
      ]),
    );
  });

  it('list the user’s methods in /openrpc.json and rpc.discover', async () => {
    const doc = (await s.send('GET', '/openrpc.json')).body as { methods: { name: string }[] };
    expect(doc.methods.map((m) => m.name)).toEqual(
      expect.arrayContaining(['Greeter.SayHello', 'Counter.Increment']),
    );
    const discovered = await s.ok('jsonrpc', 'rpc.discover', {});
    expect(discovered).toEqual(doc);
  });

  it('count the user’s calls in /metrics', async () => {
    const text = (await s.send('GET', '/metrics')).text;
    expect(text).toMatch(/leasegate_requests_total\{method="Greeter\.SayHello",code="ok"\} \d+/);
  });
});

describe('the typed client with the user’s service table', () => {
  it('calls the user’s methods by their camelCase names', async () => {
    const client = createClient<{
      greeter: { sayHello(req: { name: string }): Promise<{ greeting: string }> };
    }>({
      baseUrl: s.url,
      services: userServices,
    });
    try {
      expect(await client.greeter.sayHello({ name: 'Cy' })).toEqual({ greeting: 'hello Cy' });
    } finally {
      await client.close();
    }
  });
});
