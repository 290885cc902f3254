/**
 * Fixtures of the idempotency, deadline and sequence tests: a user-level
 * `Slow` service served beside the built-in ones (a call that takes as long as
 * asked, and effects that can be counted), and a helper that sends the exact
 * same request body again and again, as a retrying client does.
 */
import type { ExtraServices } from '../../server/index.js';
import type { Reply, TestServer, Transport } from '../helpers/server.js';

/** Effects of the Slow service, by tag. */
export type Effects = Map<string, number>;

const tagged = {
  type: 'object',
  properties: { tag: { type: 'string', minLength: 1 } },
  required: ['tag'],
  additionalProperties: false,
};

/**
 * A `Slow` service: `Sleep {tag, ms}` waits `ms` then counts one effect for
 * `tag` (async, not idempotent); `Bump {tag}` counts one at once (synchronous,
 * not idempotent). The counts live in `effects`, so a test can tell whether a
 * call ran, and how often, even after its answer was given up.
 */
export function slowService(effects: Effects): ExtraServices {
  const bump = (tag: string): number => {
    const count = (effects.get(tag) ?? 0) + 1;
    effects.set(tag, count);
    return count;
  };
  const method = (name: string, request: string, idempotent: boolean) => ({
    name,
    localName: name[0]?.toLowerCase() + name.slice(1),
    request,
    response: 'SlowResponse',
    idempotent,
    description: `Slow.${name}`,
  });
  return {
    definitions: {
      services: {
        Slow: {
          name: 'Slow',
          localName: 'slow',
          description: 'Calls that take their time, with countable effects.',
          methods: {
            Sleep: method('Sleep', 'SleepRequest', false),
            Bump: method('Bump', 'BumpRequest', false),
          },
        },
      },
      schemas: {
        $id: 'slow.json',
        definitions: {
          SleepRequest: {
            ...tagged,
            properties: { ...tagged.properties, ms: { type: 'integer', minimum: 0, default: 0 } },
          },
          BumpRequest: tagged,
          SlowResponse: {
            type: 'object',
            properties: { tag: { type: 'string' }, count: { type: 'integer' } },
            required: ['tag', 'count'],
          },
        },
      },
    },
    implementations: {
      Slow: {
        async sleep(request: { tag: string; ms: number }) {
          await new Promise((resolve) => setTimeout(resolve, request.ms));
          return { tag: request.tag, count: bump(request.tag) };
        },
        bump(request: { tag: string }) {
          return { tag: request.tag, count: bump(request.tag) };
        },
      },
    },
  };
}

/** One keyed (or unkeyed) call as the test sees it, on either transport. */
export interface Sent {
  /** HTTP status of the reply. */
  readonly status: number;
  /** Whether the reply carries `Idempotent-Replayed: true`. */
  readonly replayed: boolean;
  readonly retryAfter: string | undefined;
  readonly ok: boolean;
  readonly result: Record<string, unknown>;
  /** The contract's string code on failure. */
  readonly code: string | undefined;
  readonly reason: string | undefined;
  readonly field: string | undefined;
  /** The raw body text (replays must be byte-identical). */
  readonly text: string;
}

/**
 * Sends `Service.Method` with `params` over a transport with an optional key.
 * Over JSON-RPC the id is fixed, so a repeated call sends the very same body.
 */
export async function send(
  s: TestServer,
  t: Transport,
  method: string,
  params: unknown,
  key?: string,
  headers: Record<string, string> = {},
): Promise<Sent> {
  const h = key === undefined ? headers : { 'idempotency-key': key, ...headers };
  const reply =
    t === 'http'
      ? await s.post(method, params, h)
      : await s.jsonrpc({ jsonrpc: '2.0', id: 1, method, params }, h);
  return normalise(t, reply);
}

/** Reads a reply of either transport (a JSON-RPC single response, not a batch). */
export function normalise(t: Transport, reply: Reply): Sent {
  const common = {
    status: reply.status,
    replayed: reply.headers['idempotent-replayed'] === 'true',
    retryAfter: reply.headers['retry-after'] as string | undefined,
    text: reply.text,
  };
  const body = (reply.body ?? {}) as Record<string, unknown>;
  const failed = (error: Record<string, unknown>) => {
    const details = (error.details ?? {}) as Record<string, unknown>;
    return {
      ...common,
      ok: false,
      result: {},
      code: error.code as string,
      reason: details.reason as string | undefined,
      field: details.field as string | undefined,
    };
  };
  if (t === 'http') {
    if (reply.status === 200)
      return { ...common, ok: true, result: body, code: undefined, reason: undefined, field: undefined };
    return failed(body);
  }
  if (body.error !== undefined)
    return failed(((body.error as Record<string, unknown>).data ?? {}) as Record<string, unknown>);
  const result = (body.result ?? {}) as Record<string, unknown>;
  return { ...common, ok: true, result, code: undefined, reason: undefined, field: undefined };
}

/** The HTTP status a per-method reply has for a code (JSON-RPC replies are always 200). */
export function statusOf(t: Transport, httpStatus: number): number {
  return t === 'http' ? httpStatus : 200;
}
