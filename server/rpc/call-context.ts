import type { IncomingHttpHeaders } from 'node:http';
import { Header, parseIdempotencyKey } from '../../common/headers.js';
import { RpcError } from '../../common/rpc-error.js';
import type { Principal } from '../auth/principals.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import type { CallContext } from './context.js';

/**
 * Reads the call's deadline and idempotency key from the request headers.
 * `rawHeaders` (Node's list of names and values) tells a key sent twice, which
 * Node joins into one value with ", ", from one key holding ", ".
 */
export function callContext(
  principal: Principal,
  headers: IncomingHttpHeaders,
  maxDeadlineMs: number,
  rawHeaders: readonly string[] = [],
): CallContext {
  let budget = maxDeadlineMs;
  const timeout = headers[Header.RpcTimeoutMs];
  if (timeout !== undefined) {
    const ms = Number(timeout);
    if (typeof timeout !== 'string' || !/^\d+$/.test(timeout.trim()) || ms < 1) {
      throw new RpcError({
        code: 'invalid_argument',
        message: 'Rpc-Timeout-Ms must be a whole number of milliseconds >= 1',
        details: { reason: 'invalid_header', field: 'Rpc-Timeout-Ms' },
      });
    }
    budget = Math.min(ms, maxDeadlineMs);
  }
  let idempotencyKey: string | undefined;
  const rawKey = headers[Header.IdempotencyKey];
  if (rawKey !== undefined) {
    idempotencyKey = typeof rawKey === 'string' ? parseIdempotencyKey(rawKey) : undefined;
    if (idempotencyKey?.includes(', ') && sentTwice(rawHeaders, Header.IdempotencyKey)) {
      throw new RpcError({
        code: 'invalid_argument',
        message: 'Idempotency-Key was sent more than once: send one',
        details: { reason: 'invalid_idempotency_key', field: 'Idempotency-Key' },
      });
    }
    if (idempotencyKey === undefined) {
      throw new RpcError({
        code: 'invalid_argument',
        message: 'Idempotency-Key must be 1-255 printable ASCII characters (a token or a quoted string)',
        details: { reason: 'invalid_idempotency_key', field: 'Idempotency-Key' },
      });
    }
  }
  return freshContext(
    principal.name,
    principal.readOnly,
    principal.sandbox,
    Date.now() + budget,
    idempotencyKey,
  );
}

/** Whether the header `name` (lower case) occurs more than once in Node's raw list. */
function sentTwice(rawHeaders: readonly string[], name: string): boolean {
  let seen = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if ((rawHeaders[i] as string).toLowerCase() === name) seen++;
  return seen > 1;
}

/**
 * The context of one call of a JSON-RPC batch: the batch's principal, deadline
 * and key (`base`), nothing of an earlier call's outcome.
 */
export function batchCallContext(base: CallContext): CallContext {
  return freshContext(base.principal, base.readOnly, base.sandbox, base.deadline, base.idempotencyKey);
}

/**
 * A context before its call runs. Built field by field, never by an object
 * spread: on Node 20 a spread's result outlives scavenges and is promoted
 * with what it holds (see client/sequencer.ts for the figures).
 */
function freshContext(
  principal: string,
  readOnly: boolean,
  sandbox: Sandbox,
  deadline: number,
  idempotencyKey: string | undefined,
): CallContext {
  return {
    principal,
    readOnly,
    sandbox,
    deadline,
    idempotencyKey,
    leaseRemainingMs: undefined,
    answerFingerprint: undefined,
    answerLogged: false,
    settlesThisTurn: false,
  };
}
