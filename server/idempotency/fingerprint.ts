import { hash } from 'node:crypto';
import { RpcError } from '../../common/rpc-error.js';

/**
 * The fingerprint of a keyed request: a 128-bit hash of the transport, the
 * method and the validated request (after defaults are filled and unknown
 * fields dropped), as a 16-character binary (latin1) string.
 *
 * The request is hashed as a tree, in canonical order: object keys sorted at
 * every level, values that JSON drops (undefined, functions) dropped, -0 as 0;
 * so two serialisations of one request (keys in another order) fingerprint
 * alike, as they would by their canonical JSON. Every value is fed as tagged,
 * length-prefixed 32-bit words (two UTF-16 code units a word) to MurmurHash3's
 * x86 128-bit mixing, with no string built on the way (the words go to one
 * reused array, then one loop mixes them). The canonical JSON text and its
 * SHA-256 (the first fingerprint, {@link legacyFingerprint}) were a quarter of
 * the instructions a key cost a call. A collision matters only
 * between two requests under the same principal and key, so a non-cryptographic
 * 128-bit hash keeps it out of reach.
 */
export function fingerprint(transport: 'http' | 'jsonrpc', method: string, request: unknown): string {
  begin();
  feedString(transport);
  feedString(method);
  feedValue(request);
  return finish();
}

/**
 * The first fingerprint (SHA-256 of the canonical JSON, 32 characters), which
 * redo logs and checkpoints written before {@link fingerprint} hold: a retry
 * across the upgrade is checked against it (see run-once.ts). It, canonicalJson
 * and the fallback can go once no deployment holds records older than their
 * retention (24 h by default) from a server before this one.
 */
export function legacyFingerprint(transport: 'http' | 'jsonrpc', method: string, request: unknown): string {
  return hash('sha256', `${transport} ${method}\n${canonicalJson(request)}`, 'binary');
}

/** Whether a stored fingerprint is a {@link legacyFingerprint} (by its length). */
export function isLegacyFingerprint(stored: string): boolean {
  return stored.length === 32;
}

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

// Tags: each value starts with one, so that no two trees feed the same words.
const tagNull = 1;
const tagFalse = 2;
const tagTrue = 3;
const tagInt = 4;
const tagFloat = 5;
const tagString = 6;
const tagArray = 7;
const tagObject = 8;
const tagEnd = 9;

/** A number's bits, for floats. */
const float = new Float64Array(1);
const floatWords = new Uint32Array(float.buffer);

/**
 * The words of the fingerprint being computed (one at a time: it is
 * synchronous), mixed in one loop by `finish`. Feeding only stores words. The
 * version before mixed each block as it filled, with the hash state in an
 * Int32Array (module variables holding numbers beyond 2^30 are heap objects,
 * and each assignment allocated one); its loads, stores and calls cost 7 840
 * instructions a RemotePrint fingerprint against 3 170 now (callgrind switched
 * on around 50 000 fingerprints of parsed requests, less an empty run).
 * `count` stays a small integer, which V8 keeps unboxed in a module variable.
 */
let words = new Int32Array(256);
let count = 0;

/** Makes room for `more` words. */
function reserve(more: number): void {
  if (count + more <= words.length) return;
  let size = words.length * 2;
  while (size < count + more) size *= 2;
  const grown = new Int32Array(size);
  grown.set(words.subarray(0, count));
  words = grown;
}

const c1 = 0x239b961b;
const c2 = 0xab0e9789 | 0;
const c3 = 0x38b34ae5;
const c4 = 0xa1e38b93 | 0;

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));

/** Words kept between fingerprints; a larger array (a request of megabytes) is let go after use. */
const keptWords = 65_536;

/**
 * Deepest nesting fed: a request nested deeper (JSON.parse takes thousands of
 * levels) is refused with invalid_argument rather than overflowing the stack
 * of the recursive walk (which surfaced as an internal error).
 */
export const maxDepth = 256;
let depth = 0;

function begin(): void {
  count = 0;
  depth = 0;
  if (words.length > keptWords) words = new Int32Array(256);
}

/** Feeds one 32-bit word. */
function feed(word: number): void {
  reserve(1);
  words[count++] = word;
}

function feedString(text: string): void {
  const length = text.length;
  reserve(3 + (length >>> 1));
  const w = words;
  let n = count;
  w[n++] = tagString;
  w[n++] = length;
  const pairs = length & ~1;
  for (let i = 0; i < pairs; i += 2) w[n++] = text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16);
  if (pairs < length) w[n++] = text.charCodeAt(pairs);
  count = n;
}

function feedNumber(n: number): void {
  if (Number.isInteger(n) && n >= -0x8000_0000 && n <= 0x7fff_ffff) {
    feed(tagInt);
    feed(n | 0); // -0 | 0 is 0, as JSON writes it
    return;
  }
  float[0] = n;
  feed(tagFloat);
  feed(floatWords[0] as number);
  feed(floatWords[1] as number);
}

/** Feeds a value as JSON sees it (undefined and functions as null, as in an array). */
function feedValue(value: unknown): void {
  switch (typeof value) {
    case 'string':
      feedString(value);
      return;
    case 'number':
      feedNumber(value);
      return;
    case 'boolean':
      feed(value ? tagTrue : tagFalse);
      return;
    case 'object':
      if (value === null) feed(tagNull);
      else if (Array.isArray(value)) feedArray(value);
      else feedObject(value as Record<string, unknown>);
      return;
    case 'bigint':
      // JSON has no bigint (and JSON.stringify throws); hash its digits rather than fail.
      feedString(`${value}n`);
      return;
    default:
      feed(tagNull);
  }
}

function enter(): void {
  if (++depth > maxDepth)
    throw new RpcError({
      code: 'invalid_argument',
      message: `the request is nested more than ${maxDepth} levels deep`,
      details: { reason: 'too_deep' },
    });
}

function feedArray(items: readonly unknown[]): void {
  enter();
  feed(tagArray);
  feed(items.length);
  for (const item of items) feedValue(item);
  depth--;
}

/** Sorts keys as Array.prototype.sort does (by UTF-16 code units); by insertion for the few keys a request has. */
function sortKeys(keys: string[]): void {
  if (keys.length > 8) {
    keys.sort();
    return;
  }
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i] as string;
    let j = i - 1;
    for (; j >= 0 && (keys[j] as string) > key; j--) keys[j + 1] = keys[j] as string;
    keys[j + 1] = key;
  }
}

function feedObject(object: Record<string, unknown>): void {
  enter();
  feed(tagObject);
  const keys = Object.keys(object);
  sortKeys(keys);
  for (const key of keys) {
    const item = object[key];
    if (item === undefined || typeof item === 'function') continue;
    feedString(key);
    feedValue(item);
  }
  feed(tagEnd);
  depth--;
}

const fmix = (x: number): number => {
  let h = x;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
};

/** Mixes the last partial block and the length in, and spells the 128 bits as 16 latin1 characters. */
function finish(): string {
  const w = words;
  const n = count;
  let h1 = 0x6a09e667;
  let h2 = 0xbb67ae85 | 0;
  let h3 = 0x3c6ef372;
  let h4 = 0xa54ff53a | 0;
  // MurmurHash3 x86_128's body, a block of four words at a time.
  const blocks = n & ~3;
  for (let i = 0; i < blocks; i += 4) {
    h1 ^= Math.imul(rotl(Math.imul(w[i] as number, c1), 15), c2);
    h1 = (Math.imul((rotl(h1, 19) + h2) | 0, 5) + 0x561ccd1b) | 0;
    h2 ^= Math.imul(rotl(Math.imul(w[i + 1] as number, c2), 16), c3);
    h2 = (Math.imul((rotl(h2, 17) + h3) | 0, 5) + 0x0bcaa747) | 0;
    h3 ^= Math.imul(rotl(Math.imul(w[i + 2] as number, c3), 17), c4);
    h3 = (Math.imul((rotl(h3, 15) + h4) | 0, 5) + 0x96cd1c35) | 0;
    h4 ^= Math.imul(rotl(Math.imul(w[i + 3] as number, c4), 18), c1);
    h4 = (Math.imul((rotl(h4, 13) + h1) | 0, 5) + 0x32ac3b17) | 0;
  }
  const tail = n & 3;
  if (tail > 0) {
    // The words of the partial block, with zeros after them (as MurmurHash3's tail).
    const k1 = w[blocks] as number;
    const k2 = tail > 1 ? (w[blocks + 1] as number) : 0;
    const k3 = tail > 2 ? (w[blocks + 2] as number) : 0;
    h1 ^= Math.imul(rotl(Math.imul(k1, c1), 15), c2);
    h2 ^= Math.imul(rotl(Math.imul(k2, c2), 16), c3);
    h3 ^= Math.imul(rotl(Math.imul(k3, c3), 17), c4);
  }
  const length = n * 4;
  h1 ^= length;
  h2 ^= length;
  h3 ^= length;
  h4 ^= length;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  h1 = fmix(h1);
  h2 = fmix(h2);
  h3 = fmix(h3);
  h4 = fmix(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  // Sixteen explicit arguments: fromCharCode.apply over a typed array went through V8's
  // generic list-from-array path (~800 of the fingerprint's instructions in the server).
  return String.fromCharCode(
    h1 & 0xff,
    (h1 >>> 8) & 0xff,
    (h1 >>> 16) & 0xff,
    h1 >>> 24,
    h2 & 0xff,
    (h2 >>> 8) & 0xff,
    (h2 >>> 16) & 0xff,
    h2 >>> 24,
    h3 & 0xff,
    (h3 >>> 8) & 0xff,
    (h3 >>> 16) & 0xff,
    h3 >>> 24,
    h4 & 0xff,
    (h4 >>> 8) & 0xff,
    (h4 >>> 16) & 0xff,
    h4 >>> 24,
  );
}
