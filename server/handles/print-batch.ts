/**
 * The prints of one turn of the event loop, written together.
 *
 * Under load many RemotePrint calls arrive in one turn (one per ready
 * socket). Written one by one, each costs an fstat for its offset, a redo-log
 * write(2) and a data write(2). Queued here and flushed once the turn's I/O
 * callbacks are done (setImmediate), each handle costs one fstat and one
 * writev(2) per turn, and the redo log one write(2) for all of them: the log
 * records first (write-ahead), then the bytes, then the answers.
 */
import fs from 'node:fs';
import { RpcError } from '../../common/rpc-error.js';
import { fromOsError } from '../errors/os-errors.js';
import type { DurabilityLog, PrintCall } from '../redo-log/durability-log.js';
import type { Handle } from './handle-table.js';

/** What a print did. */
export interface PrintResult {
  readonly bytesWritten: number;
  /** Where its bytes landed. */
  readonly offset: number;
  readonly seq: number;
}

interface QueuedPrint {
  readonly bytes: Buffer;
  readonly seq: number;
  readonly call: PrintCall;
  readonly resolve: (result: PrintResult) => void;
  readonly reject: (error: unknown) => void;
  offset: number;
}

/** One handle's prints of a turn, in call order. */
interface HandleGroup {
  readonly handle: Handle;
  readonly prints: QueuedPrint[];
  bytes: number;
  /** Offset of the first print. */
  base: number;
}

/** Queues prints and writes them at the end of the turn (or sooner, on `flush`). */
export class PrintBatch {
  /**
   * A fresh Map every turn, never `clear()`ed: V8's Map.clear leaves the old
   * hash table pointing at the new one, with its entries still in it, and
   * allocates the new table in the old generation when the old one is there.
   * A scavenge takes every old object as alive, so each turn's groups were
   * kept through two scavenges by the cleared tables before them and promoted
   * (366 bytes a call, 2.3 ms scavenges every ~500 calls at one connection,
   * where a bare Fastify route promoted 2 bytes; --trace-gc-nvp). With a new
   * Map, the old one and its table simply die: 26 bytes a call, 0.6 ms.
   */
  private queue = new Map<Handle, HandleGroup>();
  private scheduled = false;

  constructor(
    /** The handle's descriptor, reopened if needed (throws an RpcError). */
    private readonly descriptor: (handle: Handle) => number,
    private readonly log: DurabilityLog,
  ) {}

  /** Whether prints are waiting. */
  get pending(): boolean {
    return this.queue.size > 0;
  }

  /** Queues a print; the promise settles in this turn of the event loop. */
  add(handle: Handle, bytes: Buffer, seq: number, call: PrintCall): Promise<PrintResult> {
    return new Promise<PrintResult>((resolve, reject) => {
      let group = this.queue.get(handle);
      if (group === undefined) {
        group = { handle, prints: [], bytes: 0, base: 0 };
        this.queue.set(handle, group);
      }
      group.prints.push({ bytes, seq, call, resolve, reject, offset: 0 });
      group.bytes += bytes.length;
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flushLater);
      }
    });
  }

  private readonly flushLater = (): void => {
    this.scheduled = false;
    this.flush();
  };

  /** Writes every queued print now (a close, a shutdown and the end of the turn call it). */
  flush(): void {
    if (this.queue.size === 0) return;
    const groups = this.queue;
    this.queue = new Map(); // not clear(): see `queue`
    const planned: HandleGroup[] = [];
    for (const group of groups.values()) {
      try {
        this.plan(group);
        planned.push(group);
      } catch (error) {
        fail(group, error);
      }
    }
    try {
      this.log.flush();
    } catch (error) {
      for (const group of planned) fail(group, error);
      return;
    }
    for (const group of planned) this.write(group);
  }

  /** Gives each print its offset and logs it (the records wait for the log's flush). */
  private plan(group: HandleGroup): void {
    const { handle } = group;
    if (handle.mode === 'append') {
      const fd = this.descriptor(handle);
      try {
        group.base = fs.fstatSync(fd).size;
      } catch (error) {
        throw fromOsError(error, handle.display);
      }
    } else {
      group.base = handle.position;
    }
    let offset = group.base;
    for (const p of group.prints) {
      p.offset = offset;
      offset += p.bytes.length;
      this.log.printing(handle, p.offset, p.bytes, p.seq, p.call);
    }
  }

  private write(group: HandleGroup): void {
    const { handle, prints } = group;
    let fd = -1;
    written = 0;
    try {
      fd = this.descriptor(handle);
      writevAll(
        fd,
        prints.map((p) => p.bytes),
        group.bytes,
        handle.mode === 'append' ? null : group.base,
      );
    } catch (error) {
      if (written > 0) cutBack(fd, handle.mode === 'append' ? undefined : group.base, written);
      for (const p of prints) this.log.printFailed(handle, p.offset, p.seq);
      try {
        this.log.flush();
      } catch {
        // Recovery may then redo these prints; their callers are told they failed either way.
      }
      fail(group, error instanceof RpcError ? error : fromOsError(error, handle.display));
      return;
    }
    handle.position = group.base + group.bytes;
    for (const p of prints) p.resolve({ bytesWritten: p.bytes.length, offset: p.offset, seq: p.seq });
  }
}

/** Every print of the group fails; the handle's seq goes back to before them. */
function fail(group: HandleGroup, error: unknown): void {
  const first = group.prints[0];
  if (first !== undefined && group.handle.lastSeq >= first.seq) group.handle.lastSeq = first.seq - 1;
  for (const p of group.prints) p.reject(error);
}

/**
 * Bytes of the current group that reached the file, kept up to date by
 * writeAll and writevAll: when a write fails partway (ENOSPC after a short
 * write), they are what `cutBack` takes out again. (Writes are synchronous,
 * one group at a time.)
 */
let written = 0;

/** Writes every byte (at `position`, or at the end for O_APPEND descriptors), however many calls it takes. */
export function writeAll(fd: number, bytes: Uint8Array, position: number | null): void {
  let done = 0;
  while (done < bytes.length) {
    const n = fs.writeSync(fd, bytes, done, bytes.length - done, position === null ? null : position + done);
    done += n;
    written += n;
  }
}

function writevAll(fd: number, buffers: Buffer[], total: number, position: number | null): void {
  if (buffers.length === 1) {
    writeAll(fd, buffers[0] as Buffer, position);
    return;
  }
  const done = position === null ? fs.writevSync(fd, buffers) : fs.writevSync(fd, buffers, position);
  written += done;
  if (done < total)
    writeAll(fd, Buffer.concat(buffers).subarray(done), position === null ? null : position + done);
}

/**
 * Takes the first `written` bytes of a failed group back out of the file, so
 * that its callers, told that their prints failed, find the file as it was
 * and a retry does not land after a fragment of itself. On an append handle
 * they are the file's last bytes (one process writes, synchronously). At a
 * position (`base`), only when they end the file: a write over existing bytes
 * cannot be undone, and is not shortened either. Best effort: the log says
 * the prints failed whatever happens here.
 */
function cutBack(fd: number, base: number | undefined, bytes: number): void {
  try {
    const size = fs.fstatSync(fd).size;
    if (base === undefined) fs.ftruncateSync(fd, size - bytes);
    else if (size === base + bytes) fs.ftruncateSync(fd, base);
  } catch {
    // The descriptor or the disk failed again: the fragment stays.
  }
}
