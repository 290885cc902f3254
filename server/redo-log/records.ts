/**
 * What the redo log and its checkpoints hold: one record type per effect the
 * server must bring back after a crash. Records are plain data (no server
 * objects), so that recovery and tests can build and read them alone.
 */

import type { FileIdentity } from '../handles/file-identity.js';
import type { EndReason } from '../leases/lease.js';
import type { LoggedHandle, LoggedLease } from './durability-log.js';

/** How a handle was opened (as the handle table says). */
export type LoggedMode = 'read' | 'write' | 'append';

/** First record of every log and checkpoint file: the format and the served root it belongs to. */
export interface MetaRecord {
  readonly type: 'meta';
  readonly version: number;
  /** Absolute served root; logged paths are under it. */
  readonly root: string;
  readonly createdAt: number;
}

/** A lease granted (or, in a checkpoint, alive). */
export interface LeaseRecord {
  readonly type: 'lease';
  readonly id: string;
  readonly principal: string;
  readonly ttlMs: number;
  readonly expiresAt: number;
  /** Made by RemoteOpen for one handle: it ends when that handle closes. */
  readonly solo: boolean;
  /** Clock time when written. */
  readonly at: number;
}

/** A lease renewed; logged lazily (see `RedoLog.leaseRenewed`). */
export interface RenewRecord {
  readonly type: 'renew';
  readonly id: string;
  readonly expiresAt: number;
  readonly at: number;
}

/** A lease ended without a tombstone: discarded with its solo handle (see TombstoneRecord; a format-1 log has one for every end). */
export interface LeaseEndRecord {
  readonly type: 'lease-end';
  readonly id: string;
}

/**
 * An ended lease's tombstone: until `forgetAt` its id, and those of the
 * handles its end closed, answer lease_expired / lease_revoked (contract: for
 * at least 10 × TTL), across a restart too. Logged when the lease ends, in
 * place of a lease-end record (its handles' close records follow), and in a
 * checkpoint with those handles.
 */
export interface TombstoneRecord {
  readonly type: 'tombstone';
  readonly id: string;
  readonly principal: string;
  readonly reason: EndReason;
  readonly forgetAt: number;
  readonly handles: readonly string[];
}

/** A handle opened (or, in a checkpoint, open), with what a reopen needs; the file by its identity. */
export interface OpenRecord extends FileIdentity {
  readonly type: 'open';
  readonly id: string;
  readonly principal: string;
  readonly leaseId: string;
  /** Absolute host path the handle was opened at. */
  readonly abs: string;
  /** The client's path (for messages). */
  readonly display: string;
  readonly mode: LoggedMode;
  /** open(2) flags for a reopen: access mode and O_APPEND only. */
  readonly reopenFlags: number;
  readonly position: number;
  readonly lastSeq: number;
  /** The open truncated the file (O_TRUNC): recovery truncates it again before redoing later prints. */
  readonly truncated: boolean;
}

/**
 * A print, logged before its bytes are written (write-ahead): recovery writes
 * the same bytes at the same offset again, which is idempotent.
 */
export interface PrintRecord {
  readonly type: 'print';
  readonly handle: string;
  readonly offset: number;
  readonly seq: number;
  /** The call's Idempotency-Key: a keyed print logged without its completion is "in doubt" after a crash. */
  readonly key: string | undefined;
  readonly bytes: Uint8Array;
  /** Set for a keyed HTTP print: the record stands for the call's stored answer too (no idem record follows). */
  readonly answer?: LoggedPrintAnswer | undefined;
}

/**
 * What a keyed HTTP print's record carries so that it also stands for the
 * call's idempotency record: one record per keyed print rather than two.
 * Recovery rebuilds the stored answer from it: status 200 and
 * {@link printAnswerBody}, unless a print-abort of the same print follows.
 */
export interface LoggedPrintAnswer {
  /** The call's fingerprint (see idempotency/fingerprint.ts). */
  readonly fingerprint: string;
  /** The answer's Lease-Remaining-Ms. */
  readonly leaseRemainingMs: number | undefined;
  /** Clock time the print was logged: the record's retention counts from it. */
  readonly at: number;
}

/**
 * The HTTP body of a print's answer, byte for byte as the RemotePrint route
 * serialises it (fast-json-stringify writes the properties in schema order).
 * The live server stores the route's own text; recovery rebuilds a logged
 * print's answer with this one, so a replay after a crash is the same text
 * (a test compares the two).
 */
export function printAnswerBody(result: { bytesWritten: number; offset: number; seq: number }): string {
  return `{"bytesWritten":${result.bytesWritten},"offset":${result.offset},"seq":${result.seq}}`;
}

/** A logged print whose write failed: recovery neither redoes it nor counts it. */
export interface PrintAbortRecord {
  readonly type: 'print-abort';
  readonly handle: string;
  readonly offset: number;
  readonly seq: number;
}

/** A handle closed. */
export interface CloseRecord {
  readonly type: 'close';
  readonly handle: string;
}

/** A path removed (Directories.Remove): earlier prints to files under it are not redone. */
export interface RemoveRecord {
  readonly type: 'remove';
  readonly abs: string;
}

/** A keyed call's final response, as the idempotency store keeps it. */
export interface IdempotencyRecord {
  readonly type: 'idem';
  readonly scope: string;
  readonly key: string;
  readonly fingerprint: string;
  readonly status: number;
  readonly body: string;
  readonly leaseRemainingMs: number | undefined;
  /** Clock time of completion (retention counts from it). */
  readonly completedAt: number;
}

/** Last record of a checkpoint: how many records came before it (a checkpoint without it is incomplete). */
export interface EndRecord {
  readonly type: 'end';
  readonly count: number;
}

/** Any record. */
export type LogRecord =
  | MetaRecord
  | LeaseRecord
  | RenewRecord
  | LeaseEndRecord
  | TombstoneRecord
  | OpenRecord
  | PrintRecord
  | PrintAbortRecord
  | CloseRecord
  | RemoveRecord
  | IdempotencyRecord
  | EndRecord;

/**
 * Version written in meta records. 2 added tombstone records: a server that
 * reads only 1 refuses such a state directory at its meta record, before it
 * could take an unknown record for a torn tail and cut the log there.
 */
export const formatVersion = 2;
/** Versions recovery reads (1: no tombstones); it refuses others. */
export const readableFormatVersions: readonly number[] = [1, 2];

/** The open record of a logged handle (`truncated`: its open emptied the file; a checkpoint's are false). */
export function openRecord(h: LoggedHandle, truncated: boolean): OpenRecord {
  return {
    type: 'open',
    id: h.id,
    principal: h.principal,
    leaseId: h.lease.id,
    abs: h.abs,
    display: h.display,
    mode: h.mode,
    reopenFlags: h.reopenFlags,
    dev: h.dev,
    ino: h.ino,
    birth: h.birth,
    position: h.position,
    lastSeq: h.lastSeq,
    truncated,
  };
}

/** The tombstone record of an ended lease; undefined for a live one or one discarded quietly. */
export function tombstoneRecord(lease: LoggedLease): TombstoneRecord | undefined {
  const { ended, forgetAt } = lease;
  if (ended === undefined || forgetAt === undefined || !(forgetAt > 0)) return undefined;
  const handles = lease.closedIds?.() ?? [];
  return { type: 'tombstone', id: lease.id, principal: lease.principal, reason: ended, forgetAt, handles };
}
