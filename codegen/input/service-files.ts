/**
 * Service files (`*.service.json`): their JSON Schema, checked with ajv, and
 * their conversion into the descriptors of the generated service table.
 */
import { Ajv } from 'ajv';
import { CodegenError } from '../errors.js';
import { isJsonObject, type JsonValue } from '../json.js';
import { localNameOf, pascalCaseName } from '../names.js';
import { ajvError } from './read-json.js';

/** A method as the generator records it (the mutable twin of common's MethodDescriptor). */
export interface MethodModel {
  name: string;
  localName: string;
  request: string;
  response: string;
  idempotent: boolean;
  description: string;
}

/** A service as the generator records it, methods in file order. */
export interface ServiceModel {
  name: string;
  localName: string;
  description: string;
  methods: Record<string, MethodModel>;
}

/** The JSON Schema every service file must satisfy. */
export const serviceFileSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'leasegate-service-file.json',
  title: 'A leasegate service file (*.service.json)',
  type: 'object',
  required: ['service', 'methods'],
  additionalProperties: false,
  properties: {
    $schema: { type: 'string' },
    $comment: { type: 'string' },
    service: { $ref: '#/definitions/pascalCase', description: 'Wire name of the service (`Files`).' },
    description: { type: 'string' },
    methods: {
      type: 'object',
      propertyNames: { $ref: '#/definitions/pascalCase' },
      additionalProperties: { $ref: '#/definitions/method' },
    },
  },
  definitions: {
    pascalCase: { type: 'string', pattern: pascalCaseName.source },
    method: {
      type: 'object',
      required: ['request', 'response', 'idempotent'],
      additionalProperties: false,
      properties: {
        request: { type: 'string', minLength: 1, description: 'Name of the request message (a definition).' },
        response: {
          type: 'string',
          minLength: 1,
          description: 'Name of the response message (a definition).',
        },
        idempotent: { type: 'boolean', description: 'Whether a retry without an idempotency key is safe.' },
        description: { type: 'string' },
        $comment: { type: 'string' },
      },
    },
  },
} as const;

/** Shape of a service file once it passed the schema. */
interface ServiceFile {
  service: string;
  description?: string;
  methods: Record<string, { request: string; response: string; idempotent: boolean; description?: string }>;
}

const validateServiceFile = new Ajv({ allErrors: false, strict: true }).compile<ServiceFile>(
  serviceFileSchema,
);

/**
 * Checks one parsed service file and returns its model; `definitions` is the
 * bundle the request and response names must be found in.
 */
export function parseServiceFile(
  file: string,
  json: JsonValue,
  definitions: Readonly<Record<string, JsonValue>>,
): ServiceModel {
  if (!validateServiceFile(json)) throw ajvError(file, validateServiceFile.errors);
  const methods: Record<string, MethodModel> = {};
  const localNames = new Map<string, string>();
  for (const [name, method] of Object.entries(json.methods)) {
    const localName = localNameOf(name);
    const clash = localNames.get(localName);
    if (clash !== undefined) {
      throw new CodegenError({
        file,
        field: `methods.${name}`,
        message: `has the same TypeScript name (${localName}) as method ${clash}`,
      });
    }
    localNames.set(localName, name);
    for (const role of ['request', 'response'] as const) {
      checkMessage(file, `methods.${name}.${role}`, method[role], definitions);
    }
    methods[name] = {
      name,
      localName,
      request: method.request,
      response: method.response,
      idempotent: method.idempotent,
      description: method.description ?? '',
    };
  }
  if (Object.keys(methods).length === 0) {
    throw new CodegenError({ file, field: 'methods', message: 'must declare at least one method' });
  }
  return {
    name: json.service,
    localName: localNameOf(json.service),
    description: json.description ?? '',
    methods,
  };
}

/** A request or response must name an object definition: every method takes and returns one JSON object. */
function checkMessage(
  file: string,
  field: string,
  name: string,
  definitions: Readonly<Record<string, JsonValue>>,
): void {
  if (!Object.hasOwn(definitions, name)) {
    throw new CodegenError({
      file,
      field,
      message: `names the message "${name}", which no *.schema.json file defines`,
    });
  }
  const schema = definitions[name];
  if (!isJsonObject(schema) || schema.type !== 'object') {
    throw new CodegenError({
      file,
      field,
      message: `names "${name}", which is not an object schema ("type": "object"); every method takes and returns one JSON object`,
    });
  }
}
