/** The `POST /jsonrpc` path item of the OpenAPI document: JSON-RPC 2.0, single calls and batches. */
import type { ServiceDefinitions } from '../../common/service-table.js';
import type { JsonObject } from '../json.js';
import { ref } from './openapi-parts.js';

/** Tag of the JSON-RPC operation (service tags are PascalCase, so it cannot clash). */
export const jsonRpcTag = {
  name: 'JSON-RPC',
  description:
    'Every method of every service over JSON-RPC 2.0: `method` is `Service.Method`, `params` the request.',
} as const;

function idSchema(): JsonObject {
  return { type: ['string', 'integer', 'null'], description: 'Echoed in the reply.' };
}

function requestSchema(defs: ServiceDefinitions): JsonObject {
  const methods = Object.values(defs.services).flatMap((s) =>
    Object.values(s.methods).map((m) => `${s.name}.${m.name}`),
  );
  return {
    type: 'object',
    required: ['jsonrpc', 'method'],
    properties: {
      jsonrpc: { const: '2.0' },
      method: {
        type: 'string',
        enum: [...methods, 'rpc.discover'],
        description: '`Service.Method`, or rpc.discover for the OpenRPC document.',
      },
      params: { type: 'object', description: 'The request message of the method.' },
      id: { ...idSchema(), description: 'Omit it for a notification: the call runs and gets no reply.' },
    },
  };
}

function responseSchema(): JsonObject {
  return {
    type: 'object',
    required: ['jsonrpc', 'id'],
    properties: {
      jsonrpc: { const: '2.0' },
      id: idSchema(),
      result: { description: 'The response message of the method.' },
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: {
          code: {
            type: 'integer',
            description:
              'A JSON-RPC 2.0 error number (-32700, -32600, -32601, -32602, -32603) or -32000 to -32099.',
          },
          message: { type: 'string' },
          data: { type: 'object', description: "`code` is the error's string code, as in ErrorBody." },
        },
      },
    },
  };
}

/** The path item of `POST /jsonrpc`. */
export function jsonRpcPathItem(defs: ServiceDefinitions): JsonObject {
  const request = requestSchema(defs);
  const response = responseSchema();
  return {
    post: {
      operationId: 'jsonrpc',
      summary: 'JSON-RPC 2.0: call any method as `Service.Method`, alone or in a batch.',
      description:
        'Batches and notifications follow JSON-RPC 2.0. An Idempotency-Key covers the whole request, batch included.',
      tags: [jsonRpcTag.name],
      parameters: [ref('parameters', 'IdempotencyKey'), ref('parameters', 'RpcTimeoutMs')],
      requestBody: {
        required: true,
        content: {
          'application/json': {
            schema: { oneOf: [request, { type: 'array', minItems: 1, items: request }] },
          },
        },
      },
      responses: {
        '200': {
          description:
            'The reply: one response object, or an array of them for a batch. JSON-RPC errors are answered with 200 too.',
          headers: { 'Idempotent-Replayed': ref('headers', 'IdempotentReplayed') },
          content: {
            'application/json': {
              schema: { oneOf: [response, { type: 'array', items: response }] },
            },
          },
        },
        '204': { description: 'No content: every call of the request was a notification.' },
      },
    },
  };
}
