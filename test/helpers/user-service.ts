/**
 * A user's own IDL, outside the flagship schemas: a Greeter service and a
 * Counter service, written to a folder and run through the generator. Tests
 * use it to show the generator (and the server hosting its output) is general.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generate } from '../../codegen/generate.js';

/** `$id` of the user's schema bundle. */
export const userServiceBundleId = 'user-services.json';

/** The user's schema and service files, by file name. */
export const userServiceFiles: Readonly<Record<string, unknown>> = {
  'greeter.schema.json': {
    $schema: 'http://json-schema.org/draft-07/schema#',
    definitions: {
      SayHelloRequest: {
        type: 'object',
        description: 'Whom to greet.',
        properties: { name: { type: 'string', minLength: 1, description: 'Name of the person to greet.' } },
        required: ['name'],
        additionalProperties: false,
      },
      SayHelloResponse: {
        type: 'object',
        description: 'The greeting.',
        properties: { greeting: { type: 'string', description: 'The greeting, e.g. "Hello, Ada!".' } },
        required: ['greeting'],
      },
    },
  },
  'greeter.service.json': {
    service: 'Greeter',
    description: 'Says hello.',
    methods: {
      SayHello: {
        request: 'SayHelloRequest',
        response: 'SayHelloResponse',
        idempotent: true,
        description: 'Greet someone by name.',
      },
    },
  },
  'counter.schema.json': {
    $schema: 'http://json-schema.org/draft-07/schema#',
    definitions: {
      Count: { type: 'integer', description: 'A counter value.' },
      IncrementRequest: {
        type: 'object',
        description: 'How much to add.',
        properties: {
          by: { type: 'integer', minimum: 1, default: 1, description: 'Amount to add.' },
          // Bounded: still an array type, not a union of tuples of each length.
          tags: { type: 'array', items: { type: 'string' }, maxItems: 3, description: 'Labels.' },
        },
      },
      CounterValue: {
        // A human title must not rename the type: it stays CounterValue.
        title: 'Counter value',
        type: 'object',
        description: 'The counter after the call.',
        properties: { value: { $ref: '#/definitions/Count', description: 'Current value.' } },
        required: ['value'],
      },
      GetRequest: { type: 'object', description: 'Read the counter.', properties: {} },
    },
  },
  'counter.service.json': {
    service: 'Counter',
    description: 'A counter: each increment adds once, even when retried with a key.',
    methods: {
      Increment: {
        request: 'IncrementRequest',
        response: 'CounterValue',
        idempotent: false,
        description: 'Add to the counter.',
      },
      Get: {
        request: 'GetRequest',
        response: 'CounterValue',
        idempotent: true,
        description: 'Read the counter.',
      },
    },
  },
};

/** Where generateUserService put things. */
export interface UserServiceOutput {
  /** The folder of the user's schema and service files. */
  readonly schemasDir: string;
  /** The folder of the generated TypeScript and openrpc.json (its index.ts is the entry point). */
  readonly outDir: string;
  /** The generated OpenAPI document. */
  readonly openapiPath: string;
}

/** Writes the user's IDL to `<dir>/schemas` and generates it into `<dir>/generated`. */
export async function generateUserService(dir: string): Promise<UserServiceOutput> {
  const schemasDir = join(dir, 'schemas');
  const outDir = join(dir, 'generated');
  const openapiPath = join(outDir, 'openapi.yaml');
  await mkdir(schemasDir, { recursive: true });
  for (const [name, content] of Object.entries(userServiceFiles)) {
    await writeFile(join(schemasDir, name), `${JSON.stringify(content, null, 2)}\n`);
  }
  // Generated code is ESM with NodeNext `.js` specifiers, as a user's package would be.
  await writeFile(join(dir, 'package.json'), '{ "type": "module" }\n');
  await generate({ schemasDir, outDir, openapiPath, id: userServiceBundleId, title: 'user services' });
  return { schemasDir, outDir, openapiPath };
}
