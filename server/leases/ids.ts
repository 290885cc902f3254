import { randomFillSync } from 'node:crypto';

/** Random bytes drawn in batches: one getrandom call per 256 ids instead of one per id. */
const pool = Buffer.allocUnsafe(16 * 256);
let used = pool.length;
/** Scratch space where an id is assembled, so that it becomes one flat string (no cons string per id). */
const scratch = Buffer.allocUnsafe(64);

/**
 * An unguessable id: a short kind prefix (`l_`, `h_`) and 128 random bits in
 * base64url (contract: at least 122). Built as one flat one-byte string,
 * because every live handle and lease keeps its id.
 */
export function newId(prefix: string): string {
  if (used === pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const random = pool.toString('base64url', used, used + 16);
  used += 16;
  const head = scratch.write(prefix, 0, 'latin1');
  const length = head + scratch.write(random, head, 'latin1');
  return scratch.toString('latin1', 0, length);
}
