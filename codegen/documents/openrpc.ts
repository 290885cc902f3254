/**
 * Builds the OpenRPC 1.2.6 document of the JSON-RPC transport from the runtime
 * service tables: one method per `Service.Method`, params by name (one per
 * property of the request message). Pure, like the OpenAPI builder: the
 * generator writes openrpc.json and a server answers rpc.discover with it.
 */
import type { MethodDescriptor, ServiceDefinitions } from '../../common/service-table.js';
import { isJsonObject, type JsonObject, type JsonValue } from '../json.js';
import { definitionNameOf, rewriteDefinitionRefs } from '../schema-walk.js';
import { componentSchemas, messageSchema } from './components.js';
import { type DocumentInfo, defaultDocumentInfo } from './info.js';

/** Default `info.description` of the OpenRPC document. */
export const defaultOpenRpcDescription =
  'JSON-RPC 2.0 at `POST /jsonrpc`: `method` is `Service.Method` and `params` the request message, by name. Batches and notifications are supported. Application errors use -32000 to -32099 (and -32602 / -32603 for invalid_argument / internal) with `error.data.code` set to the string code of ErrorBody.';

const schemasPrefix = '#/components/schemas/';

/** The OpenRPC 1.2.6 document for `defs`. */
export function buildOpenRpcDocument(defs: ServiceDefinitions, info: DocumentInfo = {}): JsonObject {
  const methods: JsonValue[] = [];
  for (const service of Object.values(defs.services)) {
    for (const method of Object.values(service.methods))
      methods.push(openRpcMethod(defs, service.name, method));
  }
  return {
    openrpc: '1.2.6',
    info: {
      title: info.title ?? defaultDocumentInfo.title,
      description: info.description ?? defaultOpenRpcDescription,
      version: info.version ?? defaultDocumentInfo.version,
    },
    servers: [{ name: 'default', url: `${info.serverUrl ?? defaultDocumentInfo.serverUrl}/jsonrpc` }],
    methods,
    components: { schemas: componentSchemas(defs, schemasPrefix) },
  };
}

function openRpcMethod(defs: ServiceDefinitions, service: string, method: MethodDescriptor): JsonObject {
  const request = messageSchema(defs, method.request);
  const properties = isJsonObject(request.properties) ? request.properties : {};
  const required = new Set(Array.isArray(request.required) ? request.required : []);
  const params = Object.entries(properties).map(([name, schema]) => {
    const description = describe(defs, schema);
    return {
      name,
      ...(description === undefined ? {} : { description }),
      required: required.has(name),
      schema: rewriteDefinitionRefs(schema, schemasPrefix),
    };
  });
  return {
    name: `${service}.${method.name}`,
    ...(method.description === '' ? {} : { description: method.description }),
    tags: [{ name: service }],
    paramStructure: 'by-name',
    params,
    result: { name: method.response, schema: { $ref: `${schemasPrefix}${method.response}` } },
    'x-idempotent': method.idempotent,
  };
}

/** A parameter's description: its own, else that of the definition it refers to. */
function describe(defs: ServiceDefinitions, schema: JsonValue): string | undefined {
  if (!isJsonObject(schema)) return undefined;
  if (typeof schema.description === 'string') return schema.description;
  const target = typeof schema.$ref === 'string' ? definitionNameOf(schema.$ref) : undefined;
  if (target === undefined) return undefined;
  const definition = (defs.schemas.definitions as Readonly<Record<string, JsonValue>>)[target];
  return isJsonObject(definition) && typeof definition.description === 'string'
    ? definition.description
    : undefined;
}

/** The document as the text of openrpc.json. */
export function stringifyOpenRpcJson(document: JsonObject): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}
