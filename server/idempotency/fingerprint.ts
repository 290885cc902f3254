import { hash } from 'node:crypto';

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
 * x86 128-bit mixing, with no string or buffer built on the way: measured here,
 * 0.3 µs for a RemotePrint request against 1.0 µs for the canonical JSON text
 * and its SHA-256 (the first fingerprint, {@link legacyFingerprint}), which was
 * a quarter of the instructions a key costs a call. A collision matters only
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
 * The hash state, one fingerprint at a time (it is synchronous): h1..h4, the
 * block's first three words k1..k3, and the count of words fed. In a typed
 * array, not module variables: a module variable holding a number beyond 2^30
 * is a heap object, and every assignment allocated one (callgrind, 100 000
 * RemotePrint fingerprints: 14 000 instructions each that way, 4 100 this way).
 */
const state = new Int32Array(8);
const H1 = 0;
const H2 = 1;
const H3 = 2;
const H4 = 3;
const K1 = 4;
const K2 = 5;
const K3 = 6;
const WORDS = 7;

const c1 = 0x239b961b;
const c2 = 0xab0e9789 | 0;
const c3 = 0x38b34ae5;
const c4 = 0xa1e38b93 | 0;

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));

function begin(): void {
  state[H1] = 0x6a09e667;
  state[H2] = 0xbb67ae85 | 0;
  state[H3] = 0x3c6ef372;
  state[H4] = 0xa54ff53a | 0;
  state[WORDS] = 0;
}

/** Feeds one 32-bit word; every fourth completes a block. */
function feed(word: number): void {
  const at = (state[WORDS] as number) & 3;
  state[WORDS] = (state[WORDS] as number) + 1;
  if (at < 3) state[K1 + at] = word;
  else mixBlock(state[K1] as number, state[K2] as number, state[K3] as number, word);
}

/** MurmurHash3 x86_128's body step for one block of four words. */
function mixBlock(k1: number, k2: number, k3: number, k4: number): void {
  let h1 = state[H1] as number;
  let h2 = state[H2] as number;
  let h3 = state[H3] as number;
  let h4 = state[H4] as number;
  h1 ^= Math.imul(rotl(Math.imul(k1, c1), 15), c2);
  h1 = (Math.imul((rotl(h1, 19) + h2) | 0, 5) + 0x561ccd1b) | 0;
  h2 ^= Math.imul(rotl(Math.imul(k2, c2), 16), c3);
  h2 = (Math.imul((rotl(h2, 17) + h3) | 0, 5) + 0x0bcaa747) | 0;
  h3 ^= Math.imul(rotl(Math.imul(k3, c3), 17), c4);
  h3 = (Math.imul((rotl(h3, 15) + h4) | 0, 5) + 0x96cd1c35) | 0;
  h4 ^= Math.imul(rotl(Math.imul(k4, c4), 18), c1);
  h4 = (Math.imul((rotl(h4, 13) + h1) | 0, 5) + 0x32ac3b17) | 0;
  state[H1] = h1;
  state[H2] = h2;
  state[H3] = h3;
  state[H4] = h4;
}

function feedString(text: string): void {
  feed(tagString);
  feed(text.length);
  const pairs = text.length & ~1;
  let i = 0;
  while (i < pairs && ((state[WORDS] as number) & 3) !== 0) {
    feed(text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16));
    i += 2;
  }
  // Whole blocks at once: four words, eight code units.
  const blocks = (pairs - i) >>> 3;
  for (let b = 0; b < blocks; b++, i += 8) {
    mixBlock(
      text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16),
      text.charCodeAt(i + 2) | (text.charCodeAt(i + 3) << 16),
      text.charCodeAt(i + 4) | (text.charCodeAt(i + 5) << 16),
      text.charCodeAt(i + 6) | (text.charCodeAt(i + 7) << 16),
    );
  }
  state[WORDS] = (state[WORDS] as number) + blocks * 4;
  for (; i < pairs; i += 2) feed(text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16));
  if (pairs < text.length) feed(text.charCodeAt(pairs));
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

function feedArray(items: readonly unknown[]): void {
  feed(tagArray);
  feed(items.length);
  for (const item of items) feedValue(item);
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
  const words = state[WORDS] as number;
  const tail = words & 3;
  let h1 = state[H1] as number;
  let h2 = state[H2] as number;
  let h3 = state[H3] as number;
  let h4 = state[H4] as number;
  if (tail > 0) {
    // The words of the partial block, with zeros after them (as MurmurHash3's tail).
    const k1 = state[K1] as number;
    const k2 = tail > 1 ? (state[K2] as number) : 0;
    const k3 = tail > 2 ? (state[K3] as number) : 0;
    h1 ^= Math.imul(rotl(Math.imul(k1, c1), 15), c2);
    h2 ^= Math.imul(rotl(Math.imul(k2, c2), 16), c3);
    h3 ^= Math.imul(rotl(Math.imul(k3, c3), 17), c4);
  }
  const length = words * 4;
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
