/**
 * Folds records (a checkpoint's, then the logs' after it) into the state to
 * rebuild, and the list of file writes to redo. Pure: no file is touched here.
 */

import { type FileIdentity, fileKey } from '../handles/file-identity.js';
import { scopedKey } from '../idempotency/memory-store.js';
import { tombstoneTtls } from '../leases/lease.js';
import {
  type IdempotencyRecord,
  type LogRecord,
  type OpenRecord,
  printAnswerBody,
  type TombstoneRecord,
} from './records.js';

/** A lease to bring back. */
export interface RecoveredLease {
  readonly id: string;
  readonly principal: string;
  readonly ttlMs: number;
  /** expiresAt as last logged (renewals are logged lazily, so the real one was at most ttlMs/2 later). */
  readonly expiresAt: number;
  readonly solo: boolean;
}

/** A handle to bring back (its descriptor is reopened on demand, by path, checking device and inode). */
export type RecoveredHandle = Omit<OpenRecord, 'type' | 'truncated' | 'position' | 'lastSeq'> & {
  position: number;
  lastSeq: number;
};

/**
 * A keyed print that was logged (and so is redone) but whose call's response
 * was not: the server stopped between the two, before acknowledging it. A
 * retry with the same key must get this result rather than write again.
 */
export interface InDoubtPrint {
  readonly principal: string;
  readonly key: string;
  readonly handle: string;
  readonly seq: number;
  readonly offset: number;
  readonly bytes: Uint8Array;
}

/** One write or truncation to redo, in log order. */
export type RedoOp = FileIdentity & { abs: string; void: boolean } & (
    | {
        kind: 'write';
        /** The handle that printed it: a print-abort voids its own handle's write, not another's at the same offset. */
        handle: string;
        offset: number;
        bytes: Uint8Array;
        /** The stored answer the print's record stood for (keyed HTTP prints): a print-abort takes it back. */
        answer?: { readonly k: string; readonly record: IdempotencyRecord };
      }
    | { kind: 'truncate'; offset: 0; bytes: undefined }
  );

/** What replaying records yields. */
export interface ReplayedState {
  readonly leases: RecoveredLease[];
  readonly handles: RecoveredHandle[];
  /** Completed idempotency records, the latest per (scope, key). */
  readonly idempotency: IdempotencyRecord[];
  /** Ended leases' tombstones, with the ids of the handles their ends closed (lapsed ones included). */
  readonly tombstones: TombstoneRecord[];
  readonly inDoubt: InDoubtPrint[];
  /** Writes to redo, in order (voided ones are kept, flagged). */
  readonly ops: RedoOp[];
  /** Leases dropped because the log proves they had expired before the server stopped. */
  readonly expiredLeases: number;
  /** Records that named an unknown handle (should not happen; counted, not fatal). */
  readonly orphans: number;
}

/** Accumulates records in order; `result()` gives the state they describe. */
export class Replayer {
  private readonly leases = new Map<string, RecoveredLease>();
  /** Every handle seen, open or closed (closed handles' prints are still redone). */
  private readonly known = new Map<string, RecoveredHandle>();
  private readonly open = new Set<string>();
  /** Tombstones by lease id, each with the handles closed under its lease since it ended. */
  private readonly tombstones = new Map<string, { record: TombstoneRecord; handles: Set<string> }>();
  private readonly idempotency = new Map<string, IdempotencyRecord>();
  private readonly pending = new Map<string, InDoubtPrint[]>();
  private readonly ops: RedoOp[] = [];
  /** Not yet voided ops per file (`dev:ino:birth`), so voiding costs the file's ops, not the whole log's. */
  private readonly byFile = new Map<string, RedoOp[]>();
  private lastStamp = Number.NEGATIVE_INFINITY;
  private orphans = 0;

  /** Applies one record. */
  apply(record: LogRecord): void {
    switch (record.type) {
      case 'meta':
        this.stamp(record.createdAt);
        break;
      case 'lease':
        this.stamp(record.at);
        this.leases.set(record.id, {
          id: record.id,
          principal: record.principal,
          ttlMs: record.ttlMs,
          expiresAt: record.expiresAt,
          solo: record.solo,
        });
        break;
      case 'renew': {
        this.stamp(record.at);
        const lease = this.leases.get(record.id);
        if (lease !== undefined) this.leases.set(record.id, { ...lease, expiresAt: record.expiresAt });
        break;
      }
      case 'lease-end':
        this.leases.delete(record.id);
        break;
      case 'tombstone':
        // It stands for the lease's end as well (a version-1 log has lease-end records only).
        this.leases.delete(record.id);
        this.tombstones.set(record.id, { record, handles: new Set(record.handles) });
        break;
      case 'open': {
        const { type: _type, truncated, ...fields } = record;
        this.known.set(record.id, { ...fields });
        this.open.add(record.id);
        if (truncated) {
          const { abs, dev, ino, birth } = record;
          this.voidFile(fileKey(record));
          this.push({ kind: 'truncate', abs, dev, ino, birth, offset: 0, bytes: undefined, void: false });
        }
        break;
      }
      case 'print': {
        const handle = this.known.get(record.handle);
        if (handle === undefined) {
          this.orphans++;
          break;
        }
        handle.position = record.offset + record.bytes.length;
        handle.lastSeq = record.seq;
        const { abs, dev, ino, birth } = handle;
        const op: RedoOp = {
          kind: 'write',
          abs,
          dev,
          ino,
          birth,
          handle: record.handle,
          offset: record.offset,
          bytes: record.bytes,
          void: false,
        };
        this.push(op);
        if (record.key !== undefined && record.answer !== undefined) {
          // The record stands for the call's stored answer: the print is redone, so it happened.
          const { fingerprint, leaseRemainingMs, at } = record.answer;
          const { offset, seq } = record;
          this.stamp(at);
          const k = scopedKey(handle.principal, record.key);
          const answer: IdempotencyRecord = {
            type: 'idem',
            scope: handle.principal,
            key: record.key,
            fingerprint,
            status: 200,
            body: printAnswerBody({ bytesWritten: record.bytes.length, offset, seq }),
            leaseRemainingMs,
            completedAt: at,
          };
          this.idempotency.set(k, answer);
          this.pending.delete(k);
          op.answer = { k, record: answer };
        } else if (record.key !== undefined) {
          const k = scopedKey(handle.principal, record.key);
          const list = this.pending.get(k) ?? [];
          list.push({
            principal: handle.principal,
            key: record.key,
            handle: record.handle,
            seq: record.seq,
            offset: record.offset,
            bytes: record.bytes,
          });
          this.pending.set(k, list);
        }
        break;
      }
      case 'print-abort': {
        const handle = this.known.get(record.handle);
        if (handle === undefined) {
          this.orphans++;
          break;
        }
        // A failed group logs one abort per print, in call order: each voids its write, and the
        // handle goes back to before the first of them.
        const op = this.loggedWrite(handle, record.offset);
        if (op !== undefined) {
          op.void = true;
          // The answer it stood for was never given (an error's answer follows, if final).
          const answer = op.kind === 'write' ? op.answer : undefined;
          if (answer !== undefined && this.idempotency.get(answer.k) === answer.record) {
            this.idempotency.delete(answer.k);
          }
        }
        handle.position = Math.min(handle.position, record.offset);
        handle.lastSeq = Math.min(handle.lastSeq, record.seq - 1);
        for (const [k, list] of this.pending) {
          const rest = list.filter((p) => !(p.handle === record.handle && p.seq === record.seq));
          if (rest.length === 0) this.pending.delete(k);
          else if (rest.length !== list.length) this.pending.set(k, rest);
        }
        break;
      }
      case 'close': {
        this.open.delete(record.handle);
        const leaseId = this.known.get(record.handle)?.leaseId;
        if (leaseId !== undefined) this.tombstones.get(leaseId)?.handles.add(record.handle);
        break;
      }
      case 'remove': {
        const under = `${record.abs}/`;
        for (const [file, ops] of this.byFile) {
          const abs = (ops[0] as RedoOp).abs;
          if (abs === record.abs || abs.startsWith(under)) this.voidFile(file);
        }
        break;
      }
      case 'idem': {
        this.stamp(record.completedAt);
        const k = scopedKey(record.scope, record.key);
        this.idempotency.set(k, record);
        this.pending.delete(k);
        break;
      }
      case 'end':
        break;
    }
  }

  /**
   * The state: live leases (minus those the log proves expired: a lease whose
   * logged expiresAt plus ttlMs/2 is before the last logged time had run out
   * before the server stopped), the open handles of live leases, idempotency
   * records, and in-doubt prints of open handles.
   */
  result(): ReplayedState {
    const leases: RecoveredLease[] = [];
    let expiredLeases = 0;
    for (const lease of this.leases.values()) {
      if (lease.expiresAt + lease.ttlMs / 2 < this.lastStamp) {
        expiredLeases++;
        // It ran out before the server stopped, unswept: its tombstone as the sweep would have left it.
        const { id, principal, ttlMs, expiresAt } = lease;
        const record: TombstoneRecord = {
          type: 'tombstone',
          id,
          principal,
          reason: 'lease_expired',
          forgetAt: expiresAt + tombstoneTtls * ttlMs,
          handles: [],
        };
        this.tombstones.set(id, { record, handles: new Set() });
      } else leases.push(lease);
    }
    // Handles still open under an ended lease were being closed by its end.
    for (const id of this.open) {
      const leaseId = this.known.get(id)?.leaseId;
      if (leaseId !== undefined) this.tombstones.get(leaseId)?.handles.add(id);
    }
    const tombstones = [...this.tombstones.values()].map(({ record, handles }) => ({
      ...record,
      handles: [...handles],
    }));
    const live = new Set(leases.map((l) => l.id));
    const handles: RecoveredHandle[] = [];
    for (const id of this.open) {
      const handle = this.known.get(id);
      if (handle !== undefined && live.has(handle.leaseId)) handles.push(handle);
    }
    const openIds = new Set(handles.map((h) => h.id));
    const inDoubt = [...this.pending.values()].flat().filter((p) => openIds.has(p.handle));
    return {
      leases,
      handles,
      idempotency: [...this.idempotency.values()],
      tombstones,
      inDoubt,
      ops: this.ops,
      expiredLeases,
      orphans: this.orphans,
    };
  }

  private push(op: RedoOp): void {
    this.ops.push(op);
    const file = fileKey(op);
    const list = this.byFile.get(file);
    if (list === undefined) this.byFile.set(file, [op]);
    else list.push(op);
  }

  /** The handle's latest write still to redo at `offset` (a print-abort's print). */
  private loggedWrite(handle: RecoveredHandle, offset: number): RedoOp | undefined {
    const ops = this.byFile.get(fileKey(handle)) ?? [];
    for (let i = ops.length - 1; i >= 0; i--) {
      const op = ops[i] as RedoOp;
      if (op.kind === 'write' && !op.void && op.handle === handle.id && op.offset === offset) return op;
    }
    return undefined;
  }

  private voidFile(file: string): void {
    for (const op of this.byFile.get(file) ?? []) op.void = true;
    this.byFile.delete(file);
  }

  private stamp(at: number): void {
    if (at > this.lastStamp) this.lastStamp = at;
  }
}
