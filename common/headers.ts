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
 * Parses an `Idempotency-Key` value: a bare token (printable ASCII, not
 * starting with a quote) or a structured-field string (RFC 8941: `"abc"`, with
 * only `\"` and `\\` as escapes, nothing after the closing quote); the key is
 * 1–255 printable ASCII characters. Returns the key, or undefined when the
 * value is malformed (an unterminated string, another escape, parameters).
 */
export function parseIdempotencyKey(raw: string): string | undefined {
  let key = raw.trim();
  if (key.startsWith('"')) {
    let inner = '';
    let i = 1;
    for (; i < key.length; i++) {
      const c = key[i] as string;
      if (c === '"') break;
      if (c === '\\') {
        const next = key[++i];
        if (next !== '"' && next !== '\\') return undefined;
        inner += next;
      } else inner += c;
    }
    if (i !== key.length - 1) return undefined; // unterminated, or something after the closing quote
    key = inner;
  }
  if (key.length < 1 || key.length > maxIdempotencyKeyLength) return undefined;
  return /^[\x20-\x7e]+$/.test(key) ? key : undefined;
}
