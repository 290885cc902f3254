/**
 * The redo log in a server: it is opened (recovering the state directory)
 * before the server's tables exist, so that they record into it from their
 * first event; then the recovered state goes back into them.
 */
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../clock/clock.js';
import { ensureFolder } from '../errors/os-errors.js';
import type { HandleTable } from '../handles/handle-table.js';
import type { Lease } from '../leases/lease.js';
import type { LeaseTable } from '../leases/lease-table.js';
import type { DurableIdempotencyStore } from './durable-idempotency-store.js';
import type { FsyncMode } from './log-writer.js';
import type { RecoveredState } from './recovery.js';
import { RedoLog } from './redo-log.js';

/** The server's tables, as recovery refills them and checkpoints read them. */
export interface ServerTables {
  readonly clock: Clock;
  readonly leases: LeaseTable;
  readonly handles: HandleTable;
  /** Undefined when the server was given an idempotency store of its own (not made durable). */
  readonly idempotency: DurableIdempotencyStore | undefined;
}

/**
 * Puts the recovered state back: each lease with a grace of one TTL from now
 * (its holder could not renew it while the server was down), each handle
 * under its lease (its descriptor reopens on first use, and only if its path
 * still names the same file), and the idempotency records. From then on,
 * checkpoints read the live tables.
 */
export function restoreServerState(log: RedoLog, recovered: RecoveredState, tables: ServerTables): void {
  const { clock, leases, handles, idempotency } = tables;
  const now = clock.now();
  const byId = new Map<string, Lease>();
  for (const r of recovered.leases) {
    const lease = leases.restore(r.id, r.principal, r.ttlMs, now + r.ttlMs, r.solo);
    // Logged if the grace moved the expiry more than ttlMs/2 past the logged one (see RedoLog.leaseRenewed).
    log.leaseRenewed(lease);
    byId.set(r.id, lease);
  }
  for (const r of recovered.handles) {
    const lease = byId.get(r.leaseId);
    if (lease !== undefined) handles.restore(r, lease);
  }
  for (const t of recovered.tombstones) {
    const lease = leases.restoreEnded(t.id, t.principal, t.reason, t.forgetAt);
    if (lease !== undefined) for (const id of t.handles) handles.restoreTombstone(id, lease);
  }
  idempotency?.restore(recovered.idempotency);
  log.setSnapshotSource({
    leases: () => leases.liveLeases(),
    endedLeases: () => leases.endedLeases(),
    handles: () => handles.openHandles(),
    idempotency: () => idempotency?.records() ?? [],
  });
}

/** Options of {@link openServerLog}. */
export interface ServerLogOptions {
  readonly stateDir: string;
  /** The served root's real path. */
  readonly root: string;
  readonly fsync: FsyncMode;
  /** See RedoLogOptions.batchMs. */
  readonly batchMs?: number;
  readonly clock: Clock;
}

/** Creates the state directory if needed, locks and recovers it, and opens the log. */
export async function openServerLog(
  options: ServerLogOptions,
): Promise<{ log: RedoLog; recovered: RecoveredState }> {
  await ensureFolder(options.stateDir, 'the state directory');
  return RedoLog.open(options);
}

/**
 * Holds every reply until the records logged for it are written (they are
 * written together at the end of a tick), and in `always` mode until they are
 * on disk too (replies waiting together share one fdatasync: group commit).
 * A reply whose records could not be written fails with `unavailable`.
 */
export function holdRepliesUntilLogged(app: FastifyInstance, log: RedoLog): void {
  app.addHook('onSend', (_request, _reply, payload, done) => {
    const pending = log.beforeReply();
    if (pending === undefined) done(null, payload);
    else pending.then(() => done(null, payload), done);
  });
}
