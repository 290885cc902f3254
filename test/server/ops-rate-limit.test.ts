/**
 * The rate limit counts per principal, as the server resolves it from the
 * Authorization header, not per header text: spellings of one token and other
 * tokens of the same principal share a bucket, and missing or unknown tokens
 * share their client address's bucket.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

const perSecond = 2;
let s: TestServer;
beforeAll(async () => {
  s = await startTestServer({
    rateLimit: perSecond,
    tokenTable: { a1: { principal: 'alice' }, a2: { principal: 'alice' }, b1: { principal: 'bob' } },
  });
});
afterAll(async () => {
  await s.close();
});

/** Sends one Stat per Authorization value (undefined: none) at once, so that they share a one-second window. */
async function statuses(authorizations: (string | undefined)[]): Promise<number[]> {
  const replies = await Promise.all(
    authorizations.map((authorization) =>
      s.post('Directories.Stat', { path: '/' }, authorization === undefined ? {} : { authorization }),
    ),
  );
  return replies.map((r) => r.status).sort();
}

describe('--rate-limit with tokens', () => {
  it('gives one bucket to every spelling and every token of a principal', async () => {
    expect(await statuses(['Bearer a1', 'Bearer  a1', 'bearer a1', 'Bearer a2', 'BEARER a2 '])).toEqual([
      200, 200, 429, 429, 429,
    ]);
    // Another principal has a bucket of its own.
    expect(await statuses(['Bearer b1'])).toEqual([200]);
  });

  it('counts missing and unknown tokens by client address, whatever the header says', async () => {
    expect(await statuses(['Bearer x1', 'Bearer x2', 'Basic x3', 'x4', undefined])).toEqual([
      401, 401, 429, 429, 429,
    ]);
  });
});
