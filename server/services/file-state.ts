import type { Clock } from '../clock/clock.js';
import type { HandleTable } from '../handles/handle-table.js';
import type { LeaseTable } from '../leases/lease-table.js';

/** The live state the file and lease services share. */
export interface FileState {
  readonly clock: Clock;
  readonly leases: LeaseTable;
  readonly handles: HandleTable;
}
