import { hash } from 'node:crypto';

/**
 * JSON with object keys sorted at every level, so that two serialisations of
 * the same request (keys in another order) fingerprint alike. Values that
 * JSON.stringify drops (undefined, functions) are dropped here too.
 */
export function canonicalJson(value: unknown): string {
  if (typeof value !== 'object' || value === null) return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(value[i]);
    return `${out}]`;
  }
  const object = value as Record<string, unknown>;
  let out = '{';
  for (const key of Object.keys(object).sort()) {
    const item = object[key];
    if (item === undefined || typeof item === 'function') continue;
    out += `${out.length === 1 ? '' : ','}${JSON.stringify(key)}:${canonicalJson(item)}`;
  }
  return `${out}}`;
}

/**
 * The fingerprint of a keyed request: SHA-256 of the transport, the method and
 * the canonical JSON of the validated request (after defaults are filled and
 * unknown fields dropped), as a 32-character binary (latin1, 'binary' to Node) string, the most
 * compact string form of the digest (a store that persists it encodes it as it
 * likes). SHA-256 rather than a faster non-cryptographic hash because Node's
 * one-shot `crypto.hash` is the faster of the two here (about 0.4 µs for a small
 * request, against 0.5 µs for a 53-bit hash in JavaScript), and because a record
 * may one day be shared between servers, where collisions should be out of reach.
 */
export function fingerprint(transport: 'http' | 'jsonrpc', method: string, request: unknown): string {
  return hash('sha256', `${transport} ${method}\n${canonicalJson(request)}`, 'binary');
}
