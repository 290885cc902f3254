import type { Sandbox } from '../sandbox/sandbox.js';

/** What a service method knows of the call it serves. */
export interface CallContext {
  /** Who is calling (from the bearer token; `anonymous` without tokens). */
  readonly principal: string;
  /** Whether the principal may only read. */
  readonly readOnly: boolean;
  /** The principal's view of the served root. */
  readonly sandbox: Sandbox;
  /** When the caller stops waiting (epoch ms). */
  readonly deadline: number;
  /** The request's Idempotency-Key, if any. */
  readonly idempotencyKey: string | undefined;
  /** Set by methods that touch a lease: ms left after the call (the Lease-Remaining-Ms header). */
  leaseRemainingMs: number | undefined;
  /**
   * Set by the HTTP transport on a keyed call: its fingerprint. A print's log
   * record then carries it and stands for the call's stored answer (see
   * redo-log/records.ts). Unset on JSON-RPC, whose stored answers are envelopes.
   */
  answerFingerprint: string | undefined;
  /** Set by the redo log when a print's record carries the call's answer: the idempotency store need not log it again. */
  answerLogged: boolean;
  /**
   * Set by a method whose promise settles within the turn of the event loop it
   * was called in (RemotePrint: its print batch is written at setImmediate).
   * Its answer is not raced against the deadline: no timer could fire before
   * it settles, so the race would always go to the call.
   */
  settlesThisTurn: boolean;
}
