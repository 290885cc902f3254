/**
 * Binary frames of records: `[u32 payload length][u32 CRC-32 of payload][payload]`,
 * little-endian, the payload starting with a one-byte record tag. A frame whose
 * length runs past the end of the file or whose CRC does not match marks the
 * end of what was durably written (a torn tail after a crash).
 *
 * Binary rather than JSON lines: a print's bytes go in raw (no base64), and
 * encoding a print is a few field copies into a reused buffer (about 0.3 µs),
 * which matters on the RemotePrint hot path.
 */
import { crc32 } from './crc32.js';
import type { LoggedMode, LogRecord } from './records.js';

/** Bytes of a frame header. */
export const frameHeaderBytes = 8;
/** Largest payload a reader accepts; a longer length field is damage, not data. */
export const maxPayloadBytes = 256 * 1_048_576;

const tags = {
  meta: 1,
  lease: 2,
  renew: 3,
  'lease-end': 4,
  open: 5,
  print: 6,
  'print-abort': 7,
  close: 8,
  remove: 9,
  idem: 10,
  end: 11,
  tombstone: 13,
} as const satisfies Record<LogRecord['type'], number>;

/** A print record that carries its call's answer (`answer` set): the print's fields, then the answer's. */
const answeredPrintTag = 12;

const modes: readonly LoggedMode[] = ['read', 'write', 'append'];

/** Strings up to this many code units are encoded in JavaScript first (see FrameEncoder.writeShort). */
const shortString = 64;

/**
 * Appends frames to a growable buffer. One encoder is reused for every
 * record the log writes (`reset` between), so the hot path allocates no
 * buffers (a frame of 96 bytes or more gets a view for zlib's crc32).
 */
export class FrameEncoder {
  private buf: Buffer;
  private pos = 0;
  private frameStart = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Bytes encoded since the last reset. */
  get length(): number {
    return this.pos;
  }

  /** The encoded frames (a view: valid until the next call). */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  /** Forgets everything encoded. */
  reset(): void {
    this.pos = 0;
  }

  /** Encodes one record as a frame. */
  add(record: LogRecord): this {
    this.begin(record.type === 'print' && record.answer !== undefined ? answeredPrintTag : tags[record.type]);
    switch (record.type) {
      case 'meta':
        this.u32(record.version).str(record.root).f64(record.createdAt);
        break;
      case 'lease':
        this.str(record.id).str(record.principal).f64(record.ttlMs).f64(record.expiresAt);
        this.u8(record.solo ? 1 : 0).f64(record.at);
        break;
      case 'renew':
        this.str(record.id).f64(record.expiresAt).f64(record.at);
        break;
      case 'lease-end':
        this.str(record.id);
        break;
      case 'tombstone':
        this.str(record.id)
          .str(record.principal)
          .u8(record.reason === 'lease_expired' ? 0 : 1)
          .f64(record.forgetAt);
        this.u32(record.handles.length);
        for (const id of record.handles) this.str(id);
        break;
      case 'open':
        this.str(record.id).str(record.principal).str(record.leaseId).str(record.abs).str(record.display);
        this.u8(modes.indexOf(record.mode))
          .u32(record.reopenFlags)
          .f64(record.dev)
          .f64(record.ino)
          .f64(record.birth);
        this.f64(record.position)
          .f64(record.lastSeq)
          .u8(record.truncated ? 1 : 0);
        break;
      case 'print':
        this.str(record.handle).f64(record.offset).f64(record.seq).optStr(record.key).raw(record.bytes);
        if (record.answer !== undefined) {
          const { fingerprint, leaseRemainingMs, at } = record.answer;
          this.str(fingerprint).optF64(leaseRemainingMs).f64(at);
        }
        break;
      case 'print-abort':
        this.str(record.handle).f64(record.offset).f64(record.seq);
        break;
      case 'close':
        this.str(record.handle);
        break;
      case 'remove':
        this.str(record.abs);
        break;
      case 'idem':
        this.str(record.scope).str(record.key).str(record.fingerprint).u32(record.status).str(record.body);
        this.optF64(record.leaseRemainingMs).f64(record.completedAt);
        break;
      case 'end':
        this.f64(record.count);
        break;
    }
    return this.finish();
  }

  private begin(tag: number): void {
    this.frameStart = this.pos;
    this.room(frameHeaderBytes + 1);
    this.pos += frameHeaderBytes;
    this.buf[this.pos++] = tag;
  }

  private finish(): this {
    const payloadStart = this.frameStart + frameHeaderBytes;
    this.buf.writeUInt32LE(this.pos - payloadStart, this.frameStart);
    this.buf.writeUInt32LE(crc32(this.buf, payloadStart, this.pos), this.frameStart + 4);
    return this;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  private u8(v: number): this {
    this.room(1);
    this.buf[this.pos++] = v;
    return this;
  }

  private u32(v: number): this {
    this.room(4);
    this.pos = this.buf.writeUInt32LE(v, this.pos);
    return this;
  }

  private f64(v: number): this {
    this.room(8);
    this.pos = this.buf.writeDoubleLE(v, this.pos);
    return this;
  }

  private str(s: string): this {
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    this.room(4 + s.length * 3);
    const n = s.length <= shortString ? this.writeShort(s, this.pos + 4) : -1;
    const written = n >= 0 ? n : this.buf.write(s, this.pos + 4, 'utf8');
    this.buf.writeUInt32LE(written, this.pos);
    this.pos += 4 + written;
    return this;
  }

  /**
   * Encodes a string of characters below U+0800 (one or two UTF-8 bytes each)
   * byte by byte and returns the bytes written, or -1 at the first other
   * character (the caller then encodes it all). For the short strings of a
   * print record (handle, Idempotency-Key, fingerprint: Latin-1 code units)
   * this is cheaper than a call into the binding's UTF-8 encoder, about
   * 150 ns each (perf, 32 connections).
   */
  private writeShort(s: string, at: number): number {
    const buf = this.buf;
    let p = at;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) {
        buf[p++] = c;
      } else if (c < 0x800) {
        buf[p++] = 0xc0 | (c >> 6);
        buf[p++] = 0x80 | (c & 0x3f);
      } else {
        return -1;
      }
    }
    return p - at;
  }

  private optStr(s: string | undefined): this {
    if (s === undefined) return this.u8(0);
    return this.u8(1).str(s);
  }

  /** A number that may be missing, as NaN (the fields it is used for are never NaN). */
  private optF64(n: number | undefined): this {
    return this.f64(n ?? Number.NaN);
  }

  private raw(bytes: Uint8Array): this {
    this.room(4 + bytes.length);
    this.pos = this.buf.writeUInt32LE(bytes.length, this.pos);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
    return this;
  }
}

/** The result of reading frames from a buffer. */
export interface ScanResult {
  readonly records: LogRecord[];
  /** Offset just past the last good frame. */
  readonly goodEnd: number;
  /** Why reading stopped before the end, if it did: the tail from `goodEnd` is not to be trusted. */
  readonly damage: 'short' | 'length' | 'crc' | 'record' | undefined;
}

/**
 * Reads frames from `data` until its end or the first frame that is cut
 * short, has an impossible length, fails its CRC or does not decode. Print
 * bytes are views into `data` (no copy).
 */
export function scanFrames(data: Buffer): ScanResult {
  const records: LogRecord[] = [];
  let pos = 0;
  while (pos < data.length) {
    if (data.length - pos < frameHeaderBytes) return { records, goodEnd: pos, damage: 'short' };
    const len = data.readUInt32LE(pos);
    // A zero length is never written (every payload has a tag): zeros are a file's unwritten tail.
    if (len === 0 || len > maxPayloadBytes) return { records, goodEnd: pos, damage: 'length' };
    const start = pos + frameHeaderBytes;
    if (start + len > data.length) return { records, goodEnd: pos, damage: 'short' };
    if (crc32(data, start, start + len) !== data.readUInt32LE(pos + 4)) {
      return { records, goodEnd: pos, damage: 'crc' };
    }
    let record: LogRecord;
    try {
      record = decodePayload(data.subarray(start, start + len));
    } catch {
      return { records, goodEnd: pos, damage: 'record' };
    }
    records.push(record);
    pos = start + len;
  }
  return { records, goodEnd: pos, damage: undefined };
}

class Reader {
  pos = 1;
  constructor(private readonly b: Buffer) {}
  u8(): number {
    return this.b.readUInt8(this.pos++);
  }
  u32(): number {
    const v = this.b.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  f64(): number {
    const v = this.b.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }
  str(): string {
    const n = this.u32();
    if (this.pos + n > this.b.length) throw new RangeError('string past the end of the record');
    const s = this.b.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  optStr(): string | undefined {
    return this.u8() === 0 ? undefined : this.str();
  }
  optF64(): number | undefined {
    const n = this.f64();
    return Number.isNaN(n) ? undefined : n;
  }
  raw(): Buffer {
    const n = this.u32();
    if (this.pos + n > this.b.length) throw new RangeError('bytes past the end of the record');
    const v = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  done(): void {
    if (this.pos !== this.b.length) throw new RangeError('trailing bytes in a record');
  }
}

/** Decodes one payload (tag first); throws on anything malformed. */
export function decodePayload(payload: Buffer): LogRecord {
  const r = new Reader(payload);
  const record = decodeFields(payload[0] as number, r);
  r.done();
  return record;
}

function decodeFields(tag: number, r: Reader): LogRecord {
  switch (tag) {
    case tags.meta:
      return { type: 'meta', version: r.u32(), root: r.str(), createdAt: r.f64() };
    case tags.lease:
      return {
        type: 'lease',
        id: r.str(),
        principal: r.str(),
        ttlMs: r.f64(),
        expiresAt: r.f64(),
        solo: r.u8() === 1,
        at: r.f64(),
      };
    case tags.renew:
      return { type: 'renew', id: r.str(), expiresAt: r.f64(), at: r.f64() };
    case tags['lease-end']:
      return { type: 'lease-end', id: r.str() };
    case tags.tombstone: {
      const [id, principal] = [r.str(), r.str()];
      const reason = r.u8() === 0 ? 'lease_expired' : 'lease_revoked';
      const forgetAt = r.f64();
      const handles: string[] = [];
      for (let n = r.u32(); n > 0; n--) handles.push(r.str());
      return { type: 'tombstone', id, principal, reason, forgetAt, handles };
    }
    case tags.open: {
      const [id, principal, leaseId, abs, display] = [r.str(), r.str(), r.str(), r.str(), r.str()];
      const mode = modes[r.u8()];
      if (mode === undefined) throw new RangeError('unknown open mode');
      return {
        type: 'open',
        id,
        principal,
        leaseId,
        abs,
        display,
        mode,
        reopenFlags: r.u32(),
        dev: r.f64(),
        ino: r.f64(),
        birth: r.f64(),
        position: r.f64(),
        lastSeq: r.f64(),
        truncated: r.u8() === 1,
      };
    }
    case tags.print:
    case answeredPrintTag: {
      const [handle, offset, seq, key, bytes] = [r.str(), r.f64(), r.f64(), r.optStr(), r.raw()];
      const answer =
        tag === tags.print ? undefined : { fingerprint: r.str(), leaseRemainingMs: r.optF64(), at: r.f64() };
      return { type: 'print', handle, offset, seq, key, bytes, answer };
    }
    case tags['print-abort']:
      return { type: 'print-abort', handle: r.str(), offset: r.f64(), seq: r.f64() };
    case tags.close:
      return { type: 'close', handle: r.str() };
    case tags.remove:
      return { type: 'remove', abs: r.str() };
    case tags.idem: {
      const [scope, key, fingerprint, status, body] = [r.str(), r.str(), r.str(), r.u32(), r.str()];
      return {
        type: 'idem',
        scope,
        key,
        fingerprint,
        status,
        body,
        leaseRemainingMs: r.optF64(),
        completedAt: r.f64(),
      };
    }
    case tags.end:
      return { type: 'end', count: r.f64() };
    default:
      throw new RangeError(`unknown record tag ${tag}`);
  }
}
