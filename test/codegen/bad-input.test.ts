import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodegenError } from '../../codegen/errors.js';
import { generate } from '../../codegen/generate.js';
import { userServiceFiles } from '../helpers/user-service.js';

/** The user IDL of the helper, as plain mutable JSON for cases to break. */
// biome-ignore lint/suspicious/noExplicitAny: each case pokes at arbitrary depth into plain JSON
type Files = Record<string, any>;

let tempDir: string;
let caseNumber = 0;

beforeAll(async () => {
  tempDir = await mkdtemp(join(tmpdir(), 'leasegate-bad-input-'));
});

afterAll(async () => {
  await rm(tempDir, { recursive: true, force: true });
});

/** Writes the helper's IDL, broken by `mutate` (a string value is written as raw text), and runs the generator. */
async function runBroken(mutate: (files: Files) => void): Promise<{ error: unknown; outDir: string }> {
  const files = structuredClone(userServiceFiles) as Files;
  mutate(files);
  const dir = join(tempDir, `case-${++caseNumber}`);
  const schemasDir = join(dir, 'schemas');
  await mkdir(schemasDir, { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    await writeFile(
      join(schemasDir, name),
      typeof content === 'string' ? content : JSON.stringify(content, null, 2),
    );
  }
  const outDir = join(dir, 'generated');
  const error = await generate({ schemasDir, outDir }).then(
    () => undefined,
    (e: unknown) => e,
  );
  return { error, outDir };
}

describe('the generator, given bad input', () => {
  it.each<[string, (files: Files) => void, RegExp]>([
    [
      'a service naming a missing message',
      (f) => {
        f['greeter.service.json'].methods.SayHello.request = 'SayHelloRequst';
      },
      /^greeter\.service\.json: methods\.SayHello\.request: names the message "SayHelloRequst", which no \*\.schema\.json file defines$/,
    ],
    [
      'the same definition name in two files',
      (f) => {
        f['counter.schema.json'].definitions.SayHelloResponse = { type: 'object' };
      },
      /^greeter\.schema\.json: definitions\.SayHelloResponse: is defined twice \(also in counter\.schema\.json\)/,
    ],
    [
      'a service file that is not JSON',
      (f) => {
        f['greeter.service.json'] = '{ "service": "Greeter", ';
      },
      /^greeter\.service\.json: is not valid JSON/,
    ],
    [
      'a method without its idempotent flag',
      (f) => {
        delete f['greeter.service.json'].methods.SayHello.idempotent;
      },
      /^greeter\.service\.json: methods\.SayHello\.idempotent: is required$/,
    ],
    [
      'a misspelt method field',
      (f) => {
        f['greeter.service.json'].methods.SayHello.idempotant = true;
      },
      /^greeter\.service\.json: methods\.SayHello\.idempotant: is not allowed here$/,
    ],
    [
      'an idempotent flag that is not a boolean',
      (f) => {
        f['greeter.service.json'].methods.SayHello.idempotent = 'yes';
      },
      /^greeter\.service\.json: methods\.SayHello\.idempotent: must be boolean$/,
    ],
    [
      'a method name that is not PascalCase',
      (f) => {
        const methods = f['greeter.service.json'].methods;
        methods.say_hello = methods.SayHello;
        delete methods.SayHello;
      },
      /^greeter\.service\.json: methods\.say_hello: must be a PascalCase name/,
    ],
    [
      'a service file without a service name',
      (f) => {
        delete f['counter.service.json'].service;
      },
      /^counter\.service\.json: service: is required$/,
    ],
    [
      'two files declaring the same service',
      (f) => {
        f['counter.service.json'].service = 'Greeter';
      },
      /^greeter\.service\.json: service: "Greeter" is also declared in counter\.service\.json$/,
    ],
    [
      'a request that is not an object schema',
      (f) => {
        f['counter.service.json'].methods.Get.request = 'Count';
      },
      /^counter\.service\.json: methods\.Get\.request: names "Count", which is not an object schema/,
    ],
    [
      'a $ref to a definition nobody defines',
      (f) => {
        f['counter.schema.json'].definitions.CounterValue.properties.value.$ref = '#/definitions/Amount';
      },
      /^counter\.schema\.json: definitions\.CounterValue\.properties\.value\.\$ref: refers to "Amount", which no \*\.schema\.json file defines$/,
    ],
    [
      'a $ref into another file by its path',
      (f) => {
        f['counter.schema.json'].definitions.CounterValue.properties.value.$ref =
          'greeter.schema.json#/definitions/SayHelloResponse';
      },
      /^counter\.schema\.json: definitions\.CounterValue\.properties\.value\.\$ref: .* write "#\/definitions\/<Name>"$/,
    ],
    [
      'a schema keyword with a wrong value',
      (f) => {
        f['greeter.schema.json'].definitions.SayHelloRequest.properties.name.type = 'strin';
      },
      /^greeter\.schema\.json: definitions\.SayHelloRequest\.properties\.name\.type: must be one of "array", "boolean"/,
    ],
    [
      'a pattern that is not a regular expression',
      (f) => {
        f['greeter.schema.json'].definitions.SayHelloRequest.properties.name.pattern = '([';
      },
      /^greeter\.schema\.json: definitions\.SayHelloRequest: does not compile: .*regular expression/,
    ],
    [
      'a format Ajv does not know (the server would skip the check)',
      (f) => {
        f['greeter.schema.json'].definitions.SayHelloRequest.properties.name.format = 'datetime';
      },
      /^greeter\.schema\.json: definitions\.SayHelloRequest\.properties\.name\.format: unknown format "datetime"; known: .*date-time/,
    ],
    [
      'a required field the properties do not declare (dropped as unknown, so never received)',
      (f) => {
        f['greeter.schema.json'].definitions.SayHelloRequest.required = ['name', 'nickname'];
      },
      /^greeter\.schema\.json: definitions\.SayHelloRequest\.required: requires "nickname", which its properties do not declare/,
    ],
    [
      'a definition named like the built-in ErrorBody',
      (f) => {
        f['greeter.schema.json'].definitions.ErrorBody = { type: 'object' };
      },
      /^greeter\.schema\.json: definitions\.ErrorBody: "ErrorBody" is reserved by the generator/,
    ],
    [
      'a definition clashing with a generated service type',
      (f) => {
        f['greeter.schema.json'].definitions.GreeterClient = { type: 'object' };
      },
      /^greeter\.service\.json: service: "Greeter" needs the type name GreeterClient, which greeter\.schema\.json already defines$/,
    ],
    [
      'a service named like a member of the typed client',
      (f) => {
        f['greeter.service.json'].service = 'Close';
      },
      /^greeter\.service\.json: service: "Close" would be client\.close, which the typed client uses itself/,
    ],
    [
      'a message outside definitions',
      (f) => {
        f['greeter.schema.json'].properties = { name: { type: 'string' } };
      },
      /^greeter\.schema\.json: properties: is not read by the generator: put every message under "definitions"$/,
    ],
  ])('reports %s, naming the file and the field', async (_case, mutate, expected) => {
    const { error } = await runBroken(mutate);
    expect(error).toBeInstanceOf(CodegenError);
    expect((error as CodegenError).message).toMatch(expected);
  });

  it('writes nothing when the input is bad', async () => {
    const { error, outDir } = await runBroken((f) => {
      f['greeter.service.json'].methods.SayHello.response = 'Nothing';
    });
    expect(error).toBeInstanceOf(CodegenError);
    await expect(access(outDir)).rejects.toThrow();
  });

  it('reports a missing schemas folder', async () => {
    await expect(
      generate({ schemasDir: join(tempDir, 'absent'), outDir: join(tempDir, 'out') }),
    ).rejects.toThrow(/cannot read the schemas folder/);
  });
});
