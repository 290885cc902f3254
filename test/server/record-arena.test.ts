/** The idempotency store's off-heap parts: the record arena and the in-flight table, against plain models. */
import { describe, expect, it } from 'vitest';
import { InFlightTable } from '../../server/idempotency/in-flight-table.js';
import { type EntryRef, type NewEntry, RecordArena } from '../../server/idempotency/record-arena.js';

/** A small seeded generator (mulberry32), so that a failure repeats. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function entry(key: string, body: string, hash: number, extra: Partial<NewEntry> = {}): NewEntry {
  return {
    scope: 'p',
    key,
    hash,
    fingerprint: `fp-${key}`,
    body,
    status: 200,
    leaseRemainingMs: undefined,
    at: 0,
    ...extra,
  };
}

describe('RecordArena', () => {
  it('gives back every field as written, latin1 or UTF-16, short or long', () => {
    const arena = new RecordArena();
    const long = `${'é'.repeat(70)}€`; // UTF-16, past the character-by-character length
    const fields = {
      scope: 'prinçipal 😀',
      key: 'k',
      hash: 5,
      fingerprint: '\u0000\u00ff\u0080x',
      body: long,
      status: 422,
      leaseRemainingMs: 1234.5,
      at: 99,
    };
    arena.add(fields);
    arena.add(entry('latin', 'ÿ'.repeat(100), 6));
    const ref = arena.find(5, fields.scope, 'k') as EntryRef;
    const { hash, ...stored } = fields;
    expect(hash).toBe(5);
    expect(arena.read(ref)).toEqual(stored);
    expect(arena.hasFingerprint(ref, fields.fingerprint)).toBe(true);
    expect(arena.hasFingerprint(ref, '\u0000\u00ff\u0080y')).toBe(false);
    expect(arena.hasFingerprint(ref, '\u0000\u00ff\u0080')).toBe(false);
    expect(arena.characters(ref)).toBe(fields.scope.length + 1 + 4 + long.length);
    expect(arena.read(arena.find(6, 'p', 'latin') as EntryRef).body).toBe('ÿ'.repeat(100));
    expect(arena.find(5, 'prinçipal 😁', 'k')).toBeUndefined();
    expect(arena.find(5, fields.scope, 'K')).toBeUndefined();
  });

  // Random adds, kills and drops from the old end, with bodies from bytes to over a chunk and
  // hashes crowded onto four values (long probe runs, removals that move entries back).
  it.each([1, 2, 3, 4, 5, 6])('agrees with a model through random operations (seed %i)', (seed) => {
    const next = random(seed);
    const arena = new RecordArena();
    const model = new Map<string, { body: string; hash: number }>(); // live entries, oldest first
    let n = 0;
    for (let step = 0; step < 1500; step++) {
      const r = next();
      const keys = [...model.keys()];
      if (r < 0.55 || keys.length === 0) {
        const key = `k${n++}`;
        const size = next() < 0.02 ? 1_200_000 : next() < 0.1 ? 100_000 : Math.floor(next() * 40);
        const body = String.fromCharCode(97 + (n % 26)).repeat(size);
        const hash = Math.floor(next() * 4);
        arena.add(entry(key, body, hash));
        model.set(key, { body, hash });
      } else if (r < 0.8) {
        const key = keys[Math.floor(next() * keys.length)] as string;
        const { hash } = model.get(key) as { hash: number };
        arena.kill(arena.find(hash, 'p', key) as EntryRef);
        model.delete(key);
      } else {
        const oldest = arena.oldest() as EntryRef;
        expect(arena.read(oldest).key).toBe(keys[0]);
        arena.kill(oldest);
        model.delete(keys[0] as string);
      }
      expect(arena.size).toBe(model.size);
      if (step % 50 === 0 || step === 1499) {
        for (const [key, { body, hash }] of model)
          expect(arena.read(arena.find(hash, 'p', key) as EntryRef).body).toBe(body);
        const walked: string[] = [];
        for (let ref = arena.next(undefined); ref !== undefined; ref = arena.next(ref))
          if (!arena.isDead(ref)) walked.push(arena.read(ref).key);
        expect(walked).toEqual([...model.keys()]);
      }
    }
  });

  it('lets a walk go on after the entry it stood on was dropped from the old end', () => {
    const arena = new RecordArena();
    for (let i = 0; i < 5; i++) arena.add(entry(`k${i}`, 'x'.repeat(400_000), i));
    const at = arena.next(arena.next(undefined)) as EntryRef; // k1, in the first chunk
    for (let i = 0; i < 3; i++) arena.kill(arena.oldest() as EntryRef); // k0..k2
    arena.oldest(); // passes them: the first chunk goes
    expect(arena.read(arena.next(at) as EntryRef).key).toBe('k3');
  });
});

describe('InFlightTable', () => {
  class Rec {
    constructor(
      readonly hash: number,
      readonly key: string,
    ) {}
    is(_scope: string, key: string): boolean {
      return this.key === key;
    }
  }

  it.each([1, 2, 3])(
    'agrees with a Map through random adds and deletes on crowded hashes (seed %i)',
    (seed) => {
      const next = random(seed);
      const table = new InFlightTable<Rec>();
      const model = new Map<string, Rec>();
      for (let step = 0; step < 3000; step++) {
        const keys = [...model.keys()];
        if (next() < 0.55 || keys.length === 0) {
          const rec = new Rec(Math.floor(next() * 6) * 16, `k${step}`); // one home slot modulo 16
          table.add(rec);
          model.set(rec.key, rec);
        } else {
          const key = keys[Math.floor(next() * keys.length)] as string;
          table.delete(model.get(key) as Rec);
          table.delete(model.get(key) as Rec); // twice: the second finds nothing
          model.delete(key);
        }
        expect(table.size).toBe(model.size);
      }
      for (const rec of model.values()) expect(table.get(rec.hash, '', rec.key)).toBe(rec);
      expect(table.get(0, '', 'never')).toBeUndefined();
    },
  );
});
