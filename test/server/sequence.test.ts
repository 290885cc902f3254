/**
 * Per-handle print sequence numbers with idempotency keys (contract section 7)
 * over both transports: a gap waits (not stored), a stale seq under another key
 * is refused, a repeat under the same key is a replay.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer, transports } from '../helpers/server.js';
import { send, statusOf } from './idempotency-fixtures.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  expect(s.leaks()).toEqual([]);
  await s.close();
});

describe.each(transports)('RemotePrint seq over %s', (t) => {
  const dir = `seq-${t}`;
  let n = 0;
  let file = '';
  let handle = '';
  const print = (seq: number, key?: string, data = `line ${seq}\n`) =>
    send(s, t, 'Files.RemotePrint', { handle, data, seq }, key);
  const content = () => readFile(join(s.root, dir, file), 'utf8');

  beforeAll(async () => {
    await mkdir(join(s.root, dir), { recursive: true });
  });

  /** A fresh append handle for each test, with seq 1 applied. */
  async function openWithFirstLine() {
    file = `f${++n}.txt`;
    const opened = await send(s, t, 'Files.RemoteOpen', {
      path: `${dir}/${file}`,
      mode: 'append',
      create: true,
    });
    handle = opened.result.handle as string;
    expect((await print(1, `${dir}-${file}-1`)).ok).toBe(true);
  }

  it('answers a gap with sequence_gap, stores nothing, and runs the same key once the gap is filled', async () => {
    await openWithFirstLine();
    const gap = await print(3, `${dir}-${file}-3`);
    expect(gap).toMatchObject({
      status: statusOf(t, 400),
      code: 'failed_precondition',
      reason: 'sequence_gap',
      field: 'seq',
    });
    expect((await print(2, `${dir}-${file}-2`)).ok).toBe(true);
    const filled = await print(3, `${dir}-${file}-3`);
    expect(filled).toMatchObject({ status: 200, ok: true, replayed: false, result: { seq: 3 } });
    expect(await content()).toBe('line 1\nline 2\nline 3\n');
  });

  it('refuses a seq beyond 2^53 - 1 (which JSON numbers cannot tell apart) naming seq', async () => {
    await openWithFirstLine();
    const huge = await print(2 ** 53 + 2, `${dir}-${file}-huge`);
    expect(huge).toMatchObject({ code: 'invalid_argument', field: 'seq' });
    expect(await content()).toBe('line 1\n');
  });

  it('answers a stale seq under a different key with stale_sequence', async () => {
    await openWithFirstLine();
    expect((await print(2, `${dir}-${file}-2`)).ok).toBe(true);
    const stale = await print(2, `${dir}-${file}-other`);
    expect(stale).toMatchObject({ code: 'failed_precondition', reason: 'stale_sequence', replayed: false });
    expect(await content()).toBe('line 1\nline 2\n');
  });

  it('replays a repeated seq under the same key, and writes it once', async () => {
    await openWithFirstLine();
    const first = await print(2, `${dir}-${file}-2`);
    const repeat = await print(2, `${dir}-${file}-2`);
    expect(repeat).toMatchObject({ status: 200, ok: true, replayed: true, result: { seq: 2 } });
    expect(repeat.text).toBe(first.text);
    expect(await content()).toBe('line 1\nline 2\n');
  });

  it('keeps the stale answer stored: the same key asked again gets stale_sequence replayed', async () => {
    await openWithFirstLine();
    const key = `${dir}-${file}-stale`;
    expect((await print(1, key)).reason).toBe('stale_sequence');
    expect(await print(1, key)).toMatchObject({ reason: 'stale_sequence', replayed: true });
  });
});
