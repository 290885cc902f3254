/**
 * Completed idempotency records off the JavaScript heap: each record is an
 * entry of bytes in a list of chunks, in the order the records were added,
 * and an open-addressing index of typed arrays finds them by hash.
 *
 * Why: a server keeps ~10^5 records for a day. As JS objects (a record and
 * its string) each one was copied twice by scavenges before it settled in the
 * old generation, and marked again at every full GC; at one connection a
 * keyed call's scavenge took twice as long as an unkeyed one's, long enough
 * to put a call it delayed past 1 ms. Here a record is bytes in a chunk
 * (an ArrayBuffer, which the GC never walks) and three integers in the index.
 * Measured with the bench's leasegate child under 32 autocannon connections
 * with a key per call (server on one core, --trace-gc-nvp, three alternated
 * runs): promoted 229 -> 26 bytes a call (an unkeyed call's figure), scavenge
 * pauses 1.2-1.3 -> 0.7 ms, CPU 45.2-47.2 -> 44.4-44.9 µs a call; memory a
 * record (bench/idempotency-memory.ts) 258 -> 190 bytes.
 *
 * An entry: a 44-byte header (little-endian) and its four strings, each as
 * latin1 (one byte a character) when every character fits, else UTF-16LE.
 *   0 u32 entry bytes   4 u32 hash   8 f64 time   16 f64 lease-remaining ms (NaN: none)
 *   24 u16 status   26 u8 flags (dead, and which strings are UTF-16)   27 u8 unused
 *   28 u32 characters of the scope, 32 of the key, 36 of the fingerprint, 40 of the body
 * Strings follow in that order.
 */

const headerBytes = 44;
const chunkBytes = 1 << 20;
const dead = 1;
/** Flag bit of string `field` (0 scope, 1 key, 2 fingerprint, 3 body) stored as UTF-16. */
const wide = (field: number): number => 2 << field;
/** Longest string written character by character; longer ones go through Buffer.write. */
const shortString = 64;
const notLatin1 = /[\u0100-\uffff]/;

/** A chunk of entries and how many of its bytes they fill. */
interface Chunk {
  readonly buf: Buffer;
  /** The same bytes, for the header's numbers (DataView's accessors compile to plain loads and stores). */
  readonly view: DataView;
  used: number;
}

/** Where an entry is: its chunk's number and its offset in that chunk. */
export interface EntryRef {
  readonly chunk: number;
  readonly offset: number;
}

/** An entry's fields, read back. */
export interface ArenaEntry {
  readonly scope: string;
  readonly key: string;
  readonly fingerprint: string;
  readonly body: string;
  readonly status: number;
  readonly leaseRemainingMs: number | undefined;
  /** Store time of completion. */
  readonly at: number;
}

/** What an entry is made of (the characters the store's byte accounting counts are these strings'). */
export interface NewEntry extends ArenaEntry {
  readonly hash: number;
}

/**
 * The entries, oldest first, and the index. Entries are appended and leave by
 * being marked dead (`kill`); their bytes stay until `oldest()` passes them,
 * and a chunk goes once it has passed all of its entries.
 */
export class RecordArena {
  /** The chunks still holding live or not-yet-passed entries; `chunks[0]` is number `firstChunk`. */
  private chunks: Chunk[] = [];
  private firstChunk = 0;
  /** Offset of the oldest entry in chunks[0]. */
  private oldestOffset = 0;
  /** Live entries. */
  private live = 0;

  // The index: slot i is index[3i..3i+2], hash+1 (0: empty) and the entry's chunk and offset, side
  // by side (an insert touches one cache line, not three). Linear probing, at most half full.
  private index = new Int32Array(16 * 3);
  private mask = 15;

  get size(): number {
    return this.live;
  }

  /**
   * Appends an entry and indexes it; the caller makes sure (scope, key) has no
   * live entry. Room is reserved for the widest form (UTF-16), each string is
   * written as latin1 while its characters fit (one pass, rewritten as UTF-16
   * otherwise), and the unused end of the room is given back.
   */
  add(entry: NewEntry): void {
    const { scope, key, fingerprint, body } = entry;
    const most = headerBytes + 2 * (scope.length + key.length + fingerprint.length + body.length);
    const chunk = this.reserve(most);
    const { buf, view } = chunk;
    const offset = chunk.used - most;
    buf[offset + 26] = 0; // flags: writeField sets a string's bit when it is UTF-16
    buf[offset + 27] = 0;
    let at = writeField(buf, view, offset, offset + headerBytes, 0, scope);
    at = writeField(buf, view, offset, at, 1, key);
    at = writeField(buf, view, offset, at, 2, fingerprint);
    at = writeField(buf, view, offset, at, 3, body);
    const bytes = at - offset;
    chunk.used -= most - bytes;
    view.setUint32(offset, bytes, true);
    view.setUint32(offset + 4, entry.hash >>> 0, true);
    view.setFloat64(offset + 8, entry.at, true);
    view.setFloat64(offset + 16, entry.leaseRemainingMs ?? Number.NaN, true);
    view.setUint16(offset + 24, entry.status, true);
    this.insert(entry.hash, this.firstChunk + this.chunks.length - 1, offset);
    this.live++;
  }

  /** The live entry of (scope, key) with this hash, if any. */
  find(hash: number, scope: string, key: string): EntryRef | undefined {
    const slot = this.slotOf(hash, scope, key);
    if (slot < 0) return undefined;
    return { chunk: this.index[3 * slot + 1] as number, offset: this.index[3 * slot + 2] as number };
  }

  /** Whether the entry's fingerprint is `fingerprint`. */
  hasFingerprint(ref: EntryRef, fingerprint: string): boolean {
    const buf = this.chunkOf(ref.chunk);
    const o = ref.offset;
    if (buf.readUInt32LE(o + 36) !== fingerprint.length) return false;
    const start = o + headerBytes + fieldBytes(buf, o, 0) + fieldBytes(buf, o, 1);
    return equalsString(buf, start, fingerprint, ((buf[o + 26] as number) & wide(2)) !== 0);
  }

  /** Store time of the entry's completion. */
  timeOf(ref: EntryRef): number {
    return this.chunkOf(ref.chunk).readDoubleLE(ref.offset + 8);
  }

  /** Reads an entry back. */
  read(ref: EntryRef): ArenaEntry {
    const buf = this.chunkOf(ref.chunk);
    const o = ref.offset;
    const flags = buf[o + 26] as number;
    let at = o + headerBytes;
    const strings: string[] = [];
    for (let f = 0; f < 4; f++) {
      const chars = buf.readUInt32LE(o + 28 + 4 * f);
      const isWide = (flags & wide(f)) !== 0;
      const end = at + (isWide ? 2 * chars : chars);
      strings.push(buf.toString(isWide ? 'utf16le' : 'latin1', at, end));
      at = end;
    }
    const lease = buf.readDoubleLE(o + 16);
    return {
      scope: strings[0] as string,
      key: strings[1] as string,
      fingerprint: strings[2] as string,
      body: strings[3] as string,
      status: buf.readUInt16LE(o + 24),
      leaseRemainingMs: Number.isNaN(lease) ? undefined : lease,
      at: buf.readDoubleLE(o + 8),
    };
  }

  /** Characters of the entry's four strings (what the store's byte accounting counts). */
  characters(ref: EntryRef): number {
    const buf = this.chunkOf(ref.chunk);
    const o = ref.offset;
    return (
      buf.readUInt32LE(o + 28) +
      buf.readUInt32LE(o + 32) +
      buf.readUInt32LE(o + 36) +
      buf.readUInt32LE(o + 40)
    );
  }

  /** Takes a live entry out of the index and marks it dead (its bytes go when the old end passes it). */
  kill(ref: EntryRef): void {
    const buf = this.chunkOf(ref.chunk);
    const o = ref.offset;
    if (((buf[o + 26] as number) & dead) !== 0) return;
    const slot = this.slotAt(buf.readUInt32LE(o + 4) | 0, ref.chunk, o);
    if (slot >= 0) this.removeSlot(slot);
    buf[o + 26] = (buf[o + 26] as number) | dead;
    this.live--;
  }

  /** The oldest live entry (dead ones before it are passed and their chunks let go). */
  oldest(): EntryRef | undefined {
    for (;;) {
      const first = this.chunks[0];
      if (first === undefined) return undefined;
      if (this.oldestOffset >= first.used) {
        if (this.chunks.length === 1) return undefined;
        this.chunks.shift();
        this.firstChunk++;
        this.oldestOffset = 0;
        continue;
      }
      if (((first.buf[this.oldestOffset + 26] as number) & dead) === 0)
        return { chunk: this.firstChunk, offset: this.oldestOffset };
      this.oldestOffset += first.buf.readUInt32LE(this.oldestOffset);
    }
  }

  /**
   * The entry after `ref` (the oldest for undefined, or when `ref` has been
   * passed by the old end since), live or dead; undefined past the newest.
   */
  next(ref: EntryRef | undefined): EntryRef | undefined {
    let chunk = this.firstChunk;
    let offset = this.oldestOffset;
    const passed =
      ref === undefined ||
      ref.chunk < this.firstChunk ||
      (ref.chunk === this.firstChunk && ref.offset < this.oldestOffset);
    if (!passed) {
      chunk = ref.chunk;
      offset = ref.offset + this.chunkOf(ref.chunk).readUInt32LE(ref.offset);
    }
    for (;;) {
      const c = this.chunks[chunk - this.firstChunk];
      if (c === undefined) return undefined;
      if (offset < c.used) return { chunk, offset };
      chunk++;
      offset = 0;
    }
  }

  /** Whether an entry is dead. */
  isDead(ref: EntryRef): boolean {
    return ((this.chunkOf(ref.chunk)[ref.offset + 26] as number) & dead) !== 0;
  }

  private chunkOf(chunk: number): Buffer {
    return (this.chunks[chunk - this.firstChunk] as Chunk).buf;
  }

  /** Room for `bytes` at the newest end (the chunk's last `bytes` once it returns): in the newest chunk, or a new one (as large as the entry needs). */
  private reserve(bytes: number): Chunk {
    let newest = this.chunks[this.chunks.length - 1];
    if (newest === undefined || newest.used + bytes > newest.buf.length) {
      const buf = Buffer.allocUnsafeSlow(Math.max(chunkBytes, bytes));
      newest = { buf, view: new DataView(buf.buffer, buf.byteOffset, buf.length), used: 0 };
      if (this.chunks.length === 0) this.oldestOffset = 0;
      this.chunks.push(newest);
    }
    newest.used += bytes;
    return newest;
  }

  private slotOf(hash: number, scope: string, key: string): number {
    const { index, mask } = this;
    const want = (hash | 0) + 1;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const h = index[3 * i] as number;
      if (h === 0) return -1;
      if (h === want && this.entryIs(index[3 * i + 1] as number, index[3 * i + 2] as number, scope, key))
        return i;
    }
  }

  private slotAt(hash: number, chunk: number, offset: number): number {
    const { index, mask } = this;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      if (index[3 * i] === 0) return -1;
      if (index[3 * i + 1] === chunk && index[3 * i + 2] === offset) return i;
    }
  }

  private entryIs(chunk: number, o: number, scope: string, key: string): boolean {
    const buf = this.chunkOf(chunk);
    if (buf.readUInt32LE(o + 28) !== scope.length || buf.readUInt32LE(o + 32) !== key.length) return false;
    const flags = buf[o + 26] as number;
    const keyStart = o + headerBytes + fieldBytes(buf, o, 0);
    return (
      equalsString(buf, keyStart, key, (flags & wide(1)) !== 0) &&
      equalsString(buf, o + headerBytes, scope, (flags & wide(0)) !== 0)
    );
  }

  private insert(hash: number, chunk: number, offset: number): void {
    if (2 * (this.live + 1) > this.mask + 1) this.grow();
    this.place((hash | 0) + 1, chunk, offset);
  }

  /** Puts (hash+1, chunk, offset) in the first free slot of its probe run. */
  private place(stored: number, chunk: number, offset: number): void {
    const { index, mask } = this;
    let i = (stored - 1) & mask;
    while (index[3 * i] !== 0) i = (i + 1) & mask;
    index[3 * i] = stored;
    index[3 * i + 1] = chunk;
    index[3 * i + 2] = offset;
  }

  private grow(): void {
    const old = this.index;
    this.index = new Int32Array(old.length * 2);
    this.mask = (this.mask << 1) | 1;
    for (let j = 0; j < old.length; j += 3) {
      const h = old[j] as number;
      if (h !== 0) this.place(h, old[j + 1] as number, old[j + 2] as number);
    }
  }

  /** Empties a slot, moving later entries of its probe run back so that every lookup still finds them. */
  private removeSlot(slot: number): void {
    const { index, mask } = this;
    let hole = slot;
    for (let j = (slot + 1) & mask; index[3 * j] !== 0; j = (j + 1) & mask) {
      const home = ((index[3 * j] as number) - 1) & mask;
      // j's entry may move into the hole unless its home lies cyclically in (hole, j].
      const between = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (between) continue;
      index[3 * hole] = index[3 * j] as number;
      index[3 * hole + 1] = index[3 * j + 1] as number;
      index[3 * hole + 2] = index[3 * j + 2] as number;
      hole = j;
    }
    index[3 * hole] = 0;
  }
}

/** Bytes of string `field` of the entry at `o`. */
function fieldBytes(buf: Buffer, o: number, field: number): number {
  const chars = buf.readUInt32LE(o + 28 + 4 * field);
  return ((buf[o + 26] as number) & wide(field)) !== 0 ? 2 * chars : chars;
}

/**
 * Writes string `field` of the entry at `o` from `at`, its length in the
 * header, and returns where it ends: as latin1 when every character fits,
 * else as UTF-16LE with the field's flag bit set.
 */
function writeField(buf: Buffer, view: DataView, o: number, at: number, field: number, text: string): number {
  const n = text.length;
  view.setUint32(o + 28 + 4 * field, n, true);
  if (n > shortString) {
    if (!notLatin1.test(text)) return at + buf.write(text, at, 'latin1');
    buf[o + 26] = (buf[o + 26] as number) | wide(field);
    return at + buf.write(text, at, 'utf16le');
  }
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) {
      buf[o + 26] = (buf[o + 26] as number) | wide(field);
      let w = at;
      for (let j = 0; j < n; j++) {
        const d = text.charCodeAt(j);
        buf[w++] = d & 0xff;
        buf[w++] = d >>> 8;
      }
      return w;
    }
    buf[at + i] = c;
  }
  return at + n;
}

function equalsString(buf: Buffer, at: number, text: string, isWide: boolean): boolean {
  const n = text.length;
  if (isWide) {
    for (let i = 0; i < n; i++)
      if (((buf[at + 2 * i] as number) | ((buf[at + 2 * i + 1] as number) << 8)) !== text.charCodeAt(i))
        return false;
    return true;
  }
  for (let i = 0; i < n; i++) if (buf[at + i] !== text.charCodeAt(i)) return false;
  return true;
}
