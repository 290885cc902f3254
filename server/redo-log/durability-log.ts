/**
 * What the lease and handle tables tell the redo log: a narrow observer, so
 * that those tables know nothing of files and frames, and a server without a
 * state directory pays one empty call per event (V8 inlines it away).
 */

import type { FileIdentity } from '../handles/file-identity.js';
import type { EndReason } from '../leases/lease.js';

/** The fields of a lease the log records. */
export interface LoggedLease {
  readonly id: string;
  readonly principal: string;
  readonly ttlMs: number;
  readonly expiresAt: number;
  readonly solo: boolean;
  /** Why it ended (once ended), and until when its tombstone answers (0: none, a quiet discard). */
  readonly ended?: EndReason | undefined;
  readonly forgetAt?: number;
  /** Ids of the handles its end closed (an ended lease's). */
  closedIds?(): readonly string[];
}

/** The fields of a handle the log records. */
export interface LoggedHandle extends FileIdentity {
  readonly id: string;
  readonly principal: string;
  readonly lease: { readonly id: string };
  readonly abs: string;
  readonly display: string;
  readonly mode: 'read' | 'write' | 'append';
  readonly reopenFlags: number;
  readonly position: number;
  readonly lastSeq: number;
}

/**
 * The call a print serves (its CallContext), read when the print is logged at
 * the end of the turn: with a fingerprint (a keyed HTTP call), the print's
 * record also stands for the call's stored answer (`LoggedPrintAnswer` in
 * records.ts).
 */
export interface PrintCall {
  /** Its Idempotency-Key: a keyed print logged without its answer is "in doubt" after a crash. */
  readonly idempotencyKey: string | undefined;
  /** The keyed HTTP call's fingerprint; undefined for other calls. */
  readonly answerFingerprint: string | undefined;
  /** The answer's Lease-Remaining-Ms. */
  readonly leaseRemainingMs: number | undefined;
  /** Set by the log when the print's record carries the answer: the idempotency store need not log it again. */
  answerLogged: boolean;
}

/** A print that a restarted server had logged but not acknowledged (see `takeInDoubt`). */
export interface InDoubtResult {
  readonly offset: number;
  readonly seq: number;
  readonly bytesWritten: number;
}

/**
 * Events of the live state that must survive a crash. Methods called before
 * an effect (`leaseGranted`, `handleOpened`, `printing`) throw an RpcError
 * (`unavailable`) when the log cannot take the record, and the caller must
 * then not apply or acknowledge the effect. Methods called after an effect
 * that a restart can safely get wrong (a renewal, an end, a close: the lease
 * then simply runs out again) never throw.
 */
export interface DurabilityLog {
  /** A lease was granted. */
  leaseGranted(lease: LoggedLease): void;
  /** A lease was renewed (logged lazily: only once the logged expiry is more than ttlMs/2 behind). */
  leaseRenewed(lease: LoggedLease): void;
  /** A lease ended (expired, revoked, discarded); an expired or revoked one leaves its tombstone. */
  leaseEnded(lease: LoggedLease): void;
  /** A handle was opened (`truncated`: the open emptied the file). */
  handleOpened(handle: LoggedHandle, truncated: boolean): void;
  /**
   * A print is about to write `bytes` at `offset` (write-ahead: before the
   * bytes reach the file). The record may wait for `flush`, which the caller
   * runs before it writes the bytes. When `call` has a fingerprint, the record
   * stands for the keyed call's stored answer as well (status 200,
   * `printAnswerBody`) unless `printFailed` follows.
   */
  printing(handle: LoggedHandle, offset: number, bytes: Uint8Array, seq: number, call: PrintCall): void;
  /** Writes the records still waiting (one write(2)); throws `unavailable` when the log cannot take them. */
  flush(): void;
  /** The write announced by `printing` failed; the handle's position and seq did not move. */
  printFailed(handle: LoggedHandle, offset: number, seq: number): void;
  /** A handle was closed. */
  handleClosed(handle: LoggedHandle): void;
  /** A path (file or folder) was removed. */
  pathRemoved(abs: string): void;
  /**
   * After a restart: the result of a print that was logged but not
   * acknowledged, if `key` names one on this handle (and `seq`, when given,
   * matches); it is handed out once. Its bytes are already in the file.
   */
  takeInDoubt(
    principal: string,
    key: string,
    handle: string,
    seq: number | undefined,
    bytes: Uint8Array,
  ): InDoubtResult | undefined;
  /** Prints in doubt still unclaimed (0 on the hot path almost always). */
  readonly inDoubtCount: number;
}

/** The log of a server without a state directory: records nothing. */
export const noDurabilityLog: DurabilityLog = {
  leaseGranted() {},
  leaseRenewed() {},
  leaseEnded() {},
  handleOpened() {},
  printing() {},
  flush() {},
  printFailed() {},
  handleClosed() {},
  pathRemoved() {},
  takeInDoubt: () => undefined,
  inDoubtCount: 0,
};
