/**
 * Prints of one turn of the event loop are written together (server/handles/print-batch.ts).
 * Many prints in flight at once on a real server: each gets its own offset, the file holds
 * every line once at the offset it was told, a close in the same turn comes after them, and a
 * failed write fails the whole group and gives its sequence numbers back.
 */
import fs from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
beforeAll(async () => {
  // One descriptor: a second handle in use parks the first one's, so a reopen can fail.
  s = await startTestServer({ maxDescriptors: 1 });
});
afterAll(async () => {
  expect(s.leaks()).toEqual([]);
  await s.close();
});

const open = async (path: string, mode: 'append' | 'write') =>
  (await s.ok('http', 'Files.RemoteOpen', { path, mode, create: true })).handle as string;

describe('prints written together', () => {
  it('gives 200 concurrent prints on one append handle distinct offsets that tile the file', async () => {
    const handle = await open('many.log', 'append');
    const lines = Array.from({ length: 200 }, (_, i) => `line ${i} ${'x'.repeat(i % 17)}\n`);
    const results = await Promise.all(
      lines.map((data) => s.ok('http', 'Files.RemotePrint', { handle, data })),
    );
    const file = await readFile(join(s.root, 'many.log'), 'utf8');
    expect(file.length).toBe(lines.join('').length);
    for (const [i, r] of results.entries()) {
      const offset = r.offset as number;
      expect(file.slice(offset, offset + (r.bytesWritten as number))).toBe(lines[i]);
    }
    // The server numbered them in the order it applied them, which is the order of their offsets.
    const bySeq = [...results].sort((a, b) => (a.seq as number) - (b.seq as number));
    const offsets = bySeq.map((r) => r.offset as number);
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    expect(bySeq.map((r) => r.seq)).toEqual(results.map((_, i) => i + 1));
  });

  it('applies a JSON-RPC batch of numbered prints and a close in order, on a write handle', async () => {
    const handle = await open('batch.txt', 'write');
    const prints = Array.from({ length: 20 }, (_, i) => ({
      jsonrpc: '2.0',
      id: i + 1,
      method: 'Files.RemotePrint',
      params: { handle, data: `${String(i).padStart(2, '0')};`, seq: i + 1 },
    }));
    const close = { jsonrpc: '2.0', id: 99, method: 'Files.RemoteClose', params: { handle } };
    const reply = await s.jsonrpc([...prints, close]);
    const answers = reply.body as { id: number; result?: { offset: number }; error?: unknown }[];
    expect(answers.every((a) => a.error === undefined)).toBe(true);
    expect(answers.filter((a) => a.id !== 99).map((a) => a.result?.offset)).toEqual(
      prints.map((_, i) => i * 3),
    );
    expect(await readFile(join(s.root, 'batch.txt'), 'utf8')).toBe(prints.map((p) => p.params.data).join(''));
    const late = await s.call('http', 'Files.RemotePrint', { handle, data: 'x' });
    // Closed by the client (not expired): the handle is gone.
    expect([late.code, late.reason]).toEqual(['not_found', 'handle_not_found']);
  });

  it('fails every queued print of a handle whose file is gone, and gives their seq numbers back', async () => {
    const doomed = await open('doomed.log', 'append');
    await s.ok('http', 'Files.RemotePrint', { handle: doomed, data: 'first\n', seq: 1 });
    // Using another handle parks the doomed one's descriptor; then its file is removed.
    const other = await open('other.log', 'append');
    await s.ok('http', 'Files.RemotePrint', { handle: other, data: 'other\n' });
    await s.ok('http', 'Directories.Remove', { path: 'doomed.log' });

    // Unnumbered, so that each takes the next seq whether or not they land in the same turn.
    const failed = await Promise.all(
      [2, 3, 4].map((n) => s.call('http', 'Files.RemotePrint', { handle: doomed, data: `${n}\n` })),
    );
    for (const f of failed) expect([f.code, f.reason]).toEqual(['failed_precondition', 'file_removed']);
    // Not stale_sequence: the failed prints did not consume seq 2.
    const again = await s.call('http', 'Files.RemotePrint', { handle: doomed, data: 'again\n', seq: 2 });
    expect([again.code, again.reason]).toEqual(['failed_precondition', 'file_removed']);
    // The other handle is unaffected.
    await s.ok('http', 'Files.RemotePrint', { handle: other, data: 'still\n' });
    expect(await readFile(join(s.root, 'other.log'), 'utf8')).toBe('other\nstill\n');
  });
});

/**
 * The disk fills up partway through a print: the OS takes the first `room`
 * bytes of the first write that carries `marker`, then refuses the rest with
 * ENOSPC (as a full file system does: a short write, then an error).
 */
function diskFullAfter(marker: string, room: number): void {
  const writeSync = fs.writeSync;
  let fullFd: number | undefined;
  vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, buffer: Uint8Array, ...rest: unknown[]) => {
    const offset = (rest[0] as number | undefined) ?? 0;
    const length = (rest[1] as number | undefined) ?? buffer.length - offset;
    const position = (rest[2] as number | null | undefined) ?? null;
    const bytes = Buffer.from(buffer.buffer, buffer.byteOffset + offset, length);
    if (fd === fullFd)
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    // The data file's write starts with the line; the redo log's record of it starts with a frame header.
    if (fullFd !== undefined || !bytes.subarray(0, marker.length).equals(Buffer.from(marker)))
      return writeSync(fd, bytes, 0, length, position);
    fullFd = fd;
    return writeSync(fd, bytes, 0, room, position);
  }) as typeof fs.writeSync);
}

describe('a print the disk has no room for', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  for (const mode of ['append', 'write'] as const) {
    it(`leaves the ${mode} file as it was, so that its retry is written once and whole`, async () => {
      const path = `full-${mode}.log`;
      const handle = await open(path, mode);
      await s.ok('http', 'Files.RemotePrint', { handle, data: 'before\n', seq: 1 });
      const line = `MARK-${mode} ${'y'.repeat(2000)}\n`;
      diskFullAfter(`MARK-${mode}`, 700);
      const failed = await s.call(
        'http',
        'Files.RemotePrint',
        { handle, data: line, seq: 2 },
        { 'idempotency-key': `full-${mode}` },
      );
      expect([failed.code, failed.reason]).toEqual(['resource_exhausted', 'no_space']);
      vi.restoreAllMocks();
      // 700 bytes of the failed print reached the file; they were taken back out.
      expect(await readFile(join(s.root, path), 'utf8')).toBe('before\n');
      const retry = await s.ok(
        'http',
        'Files.RemotePrint',
        { handle, data: line, seq: 2 },
        { 'idempotency-key': `full-${mode}` },
      );
      expect(retry).toMatchObject({ offset: 7, bytesWritten: line.length, seq: 2 });
      expect(await readFile(join(s.root, path), 'utf8')).toBe(`before\n${line}`);
    });
  }
});
