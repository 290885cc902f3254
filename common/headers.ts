/** Header names of the wire contract (lower-case, as Node and undici hand them over). */
export const Header = {
  IdempotencyKey: 'idempotency-key',
  IdempotentReplayed: 'idempotent-replayed',
  RpcTimeoutMs: 'rpc-timeout-ms',
  Authorization: 'authorization',
  LeaseRemainingMs: 'lease-remaining-ms',
  RetryAfter: 'retry-after',
  RequestId: 'request-id',
} as const;

/** Longest idempotency key the contract allows. */
export const maxIdempotencyKeyLength = 255;

/**
 * Parses an `Idempotency-Key` value: a bare token or a quoted structured-field
 * string (`"abc"`, with `\"` and `\\` escapes), 1–255 printable ASCII characters.
 * Returns the key, or undefined when the value is malformed.
 */
export function parseIdempotencyKey(raw: string): string | undefined {
  let key = raw.trim();
  if (key.length >= 2 && key.startsWith('"') && key.endsWith('"')) {
    const inner = key.slice(1, -1);
    if (/(^|[^\\])"/.test(inner)) return undefined;
    key = inner.replace(/\\(["\\])/g, '$1');
  }
  if (key.length < 1 || key.length > maxIdempotencyKeyLength) return undefined;
  return /^[\x20-\x7e]+$/.test(key) ? key : undefined;
}
