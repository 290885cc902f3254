import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { validate } from '@readme/openapi-parser';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generateUserService, type UserServiceOutput } from '../helpers/user-service.js';

let tempDir: string;
let output: UserServiceOutput;
let servicesSource: string;
let typesSource: string;

beforeAll(async () => {
  tempDir = await mkdtemp(join(tmpdir(), 'leasegate-user-service-'));
  output = await generateUserService(tempDir);
  servicesSource = await readFile(join(output.outDir, 'services.ts'), 'utf8');
  typesSource = await readFile(join(output.outDir, 'types.ts'), 'utf8');
});

afterAll(async () => {
  await rm(tempDir, { recursive: true, force: true });
});

describe("a user's own services", () => {
  it.each([
    ['the Greeter table', 'export const greeterService = {'],
    ['the Counter table', 'export const counterService = {'],
    [
      'the table of all services, sorted by name',
      'export const services = {\n  Counter: counterService,\n  Greeter: greeterService,\n}',
    ],
    ['the implementation interface', 'export interface GreeterImplementation<Context = unknown> {'],
    [
      'the implementation method',
      'sayHello(request: SayHelloRequest, context: Context): Promise<SayHelloResponse> | SayHelloResponse;',
    ],
    ['the client interface', 'export interface CounterClient<CallOptions = unknown> {'],
    [
      'the client method',
      'increment(request: IncrementRequest, options?: CallOptions): Promise<CounterValue>;',
    ],
    ['the implementations by wire name', '  Greeter: GreeterImplementation<Context>;'],
    ['the clients by local name', '  greeter: GreeterClient<CallOptions>;'],
    ['the method types', "'Greeter.SayHello': { request: SayHelloRequest; response: SayHelloResponse };"],
  ])('get %s in services.ts', (_what, expected) => {
    expect(servicesSource).toContain(expected);
  });

  it('get one exported type per message, named as the message', () => {
    for (const name of [
      'SayHelloRequest',
      'SayHelloResponse',
      'Count',
      'IncrementRequest',
      'CounterValue',
      'ErrorBody',
    ]) {
      expect(typesSource).toMatch(new RegExp(`^export (interface|type) ${name}\\b`, 'm'));
    }
    expect(typesSource).toContain('value: Count;');
    expect(typesSource).toContain('tags?: string[];'); // maxItems 3: not a union of four tuples
    expect(typesSource).not.toMatch(/\bCount1\b/);
  });

  it('get runtime tables and a schema bundle that import and match the IDL', async () => {
    const generated = (await import(pathToFileURL(join(output.outDir, 'index.ts')).href)) as {
      services: Record<string, { localName: string; methods: Record<string, unknown> }>;
      schemaBundle: { $id: string; definitions: Record<string, unknown> };
    };
    expect(Object.keys(generated.services)).toEqual(['Counter', 'Greeter']);
    expect(generated.services.Greeter?.methods.SayHello).toEqual({
      name: 'SayHello',
      localName: 'sayHello',
      request: 'SayHelloRequest',
      response: 'SayHelloResponse',
      idempotent: true,
      description: 'Greet someone by name.',
    });
    expect(Object.keys(generated.services.Counter?.methods ?? {})).toEqual(['Increment', 'Get']);
    expect(generated.schemaBundle.$id).toBe('user-services.json');
    expect(Object.keys(generated.schemaBundle.definitions)).toContain('ErrorBody');
  });

  it('get an OpenAPI document with their paths that the OpenAPI parser accepts', async () => {
    const document = parse(await readFile(output.openapiPath, 'utf8'));
    expect(Object.keys(document.paths)).toEqual([
      '/v1/Counter/Increment',
      '/v1/Counter/Get',
      '/v1/Greeter/SayHello',
      '/jsonrpc',
    ]);
    expect(document.paths['/v1/Greeter/SayHello'].post).toMatchObject({
      operationId: 'Greeter_SayHello',
      'x-idempotent': true,
      requestBody: {
        content: { 'application/json': { schema: { $ref: '#/components/schemas/SayHelloRequest' } } },
      },
    });
    expect(document.paths['/v1/Counter/Increment'].post['x-idempotent']).toBe(false);
    expect(document.info.title).toBe('user services');
    const result = await validate(document);
    expect(result.valid ? [] : result.errors).toEqual([]);
  });

  it('type-check under strict NodeNext settings, and an implementation with a wrong response does not', async () => {
    const usage = join(tempDir, 'usage.ts');
    await writeFile(
      usage,
      `import type { Clients, CounterImplementation, GreeterImplementation, MethodTypes } from './generated/index.js';
export const greeter: GreeterImplementation<{ user: string }> = {
  sayHello: (request, context) => ({ greeting: \`Hello, \${request.name} from \${context.user}!\` }),
};
export const broken: GreeterImplementation = {
  // @ts-expect-error a response without greeting is not a SayHelloResponse
  sayHello: () => ({}),
};
// The server fills \`by\` (default 1): the implementation's request has it, while the client may leave it out.
export const counter: CounterImplementation = {
  increment: (request) => ({ value: request.by * 2 }),
  get: () => ({ value: 0 }),
};
export async function call(clients: Clients): Promise<number> {
  const { value } = await clients.counter.increment({});
  return value;
}
export type Hello = MethodTypes['Greeter.SayHello']['response']['greeting'];
`,
    );
    const program = ts.createProgram([usage], {
      strict: true,
      noUncheckedIndexedAccess: true,
      verbatimModuleSyntax: true,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2023,
      types: [],
      noEmit: true,
    });
    const diagnostics = ts
      .getPreEmitDiagnostics(program)
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(diagnostics).toEqual([]);
  });
});
