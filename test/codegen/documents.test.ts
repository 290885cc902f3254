import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { validate } from '@readme/openapi-parser';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { allCodes, codeInfo } from '../../common/codes.js';
import { schemaBundle, services } from '../../generated/index.js';

const openapiPath = fileURLToPath(new URL('../../openapi.yaml', import.meta.url));
const openrpcPath = fileURLToPath(new URL('../../generated/openrpc.json', import.meta.url));
const typesPath = fileURLToPath(new URL('../../generated/types.ts', import.meta.url));

interface Operation {
  operationId: string;
  responses: Record<string, unknown>;
  'x-idempotent'?: boolean;
}

interface Document {
  paths: Record<string, { post: Operation }>;
  components: {
    schemas: Record<string, unknown>;
    responses: Record<string, { description: string; content: Record<string, { schema: unknown }> }>;
  };
}

async function openapi(): Promise<Document> {
  return parse(await readFile(openapiPath, 'utf8')) as Document;
}

describe('openapi.yaml', () => {
  it('is accepted by the OpenAPI parser', async () => {
    const result = await validate(parse(await readFile(openapiPath, 'utf8')));
    expect(result.valid ? [] : result.errors).toEqual([]);
    expect(result.specification).toBe('OpenAPI');
  });

  it('has one POST operation per method, marked with its idempotency', async () => {
    const { paths } = await openapi();
    for (const service of Object.values(services)) {
      for (const method of Object.values(service.methods)) {
        const operation = paths[`/v1/${service.name}/${method.name}`]?.post;
        expect(operation?.operationId).toBe(`${service.name}_${method.name}`);
        expect(operation?.['x-idempotent']).toBe(method.idempotent);
      }
    }
    expect(paths['/jsonrpc']?.post.operationId).toBe('jsonrpc');
  });

  it('answers every HTTP status of the code table, plus 422, with an ErrorBody on every method', async () => {
    const { paths, components } = await openapi();
    const statuses = [...new Set([...Object.values(codeInfo).map((info) => info.httpStatus), 422])];
    for (const [path, { post }] of Object.entries(paths)) {
      if (!path.startsWith('/v1/')) continue;
      for (const status of statuses) {
        const response = post.responses[String(status)] as { $ref: string } | undefined;
        expect(response, `${path} ${status}`).toBeDefined();
        const name = response?.$ref.replace('#/components/responses/', '') ?? '';
        expect(components.responses[name]?.content['application/json']?.schema).toEqual({
          $ref: '#/components/schemas/ErrorBody',
        });
      }
    }
  });

  it('names every code in the description of the response for its status', async () => {
    const { paths, components } = await openapi();
    const operation = Object.values(paths)[0]?.post;
    for (const code of allCodes) {
      const ref = operation?.responses[String(codeInfo[code].httpStatus)] as { $ref: string };
      const name = ref.$ref.replace('#/components/responses/', '');
      expect(components.responses[name]?.description, code).toContain(code);
    }
  });
});

describe('the ErrorBody definition', () => {
  it('enumerates every code of common/codes.ts, in table order', () => {
    expect(schemaBundle.definitions.ErrorBody.properties.code.enum).toEqual(allCodes);
  });

  it('is the same schema in openapi.yaml and openrpc.json', async () => {
    const { components } = await openapi();
    const openrpc = JSON.parse(await readFile(openrpcPath, 'utf8'));
    expect(components.schemas.ErrorBody).toEqual(schemaBundle.definitions.ErrorBody);
    expect(openrpc.components.schemas.ErrorBody).toEqual(schemaBundle.definitions.ErrorBody);
  });

  it('types every code in types.ts', async () => {
    const types = await readFile(typesPath, 'utf8');
    for (const code of allCodes) expect(types).toContain(`'${code}'`);
  });
});

describe('openrpc.json', () => {
  it('describes every method by name with by-name params, a result and its idempotency', async () => {
    const openrpc = JSON.parse(await readFile(openrpcPath, 'utf8'));
    expect(openrpc.openrpc).toBe('1.2.6');
    expect(openrpc.info).toMatchObject({ title: 'leasegate', version: '0.1.0' });
    const expected = Object.values(services).flatMap((s) =>
      Object.values(s.methods).map((m) => ({ name: `${s.name}.${m.name}`, method: m })),
    );
    expect(openrpc.methods.map((m: { name: string }) => m.name)).toEqual(expected.map((e) => e.name));
    for (const [i, { method }] of expected.entries()) {
      const described = openrpc.methods[i];
      expect(described.paramStructure).toBe('by-name');
      expect(described['x-idempotent']).toBe(method.idempotent);
      expect(described.result).toEqual({
        name: method.response,
        schema: { $ref: `#/components/schemas/${method.response}` },
      });
      const request = (schemaBundle.definitions as Record<string, unknown>)[method.request] as {
        properties: object;
        required?: string[];
      };
      expect(described.params.map((p: { name: string }) => p.name)).toEqual(Object.keys(request.properties));
      for (const param of described.params) {
        expect(param.required).toBe(request.required?.includes(param.name) ?? false);
        expect(param.schema).toBeTypeOf('object');
      }
    }
  });

  it('refers only to schemas it defines', async () => {
    const text = await readFile(openrpcPath, 'utf8');
    const openrpc = JSON.parse(text);
    const refs = [...text.matchAll(/"\$ref": "([^"]+)"/g)].map((m) => m[1]);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) {
      expect(ref).toMatch(/^#\/components\/schemas\//);
      expect(Object.keys(openrpc.components.schemas)).toContain(ref?.slice('#/components/schemas/'.length));
    }
  });
});
