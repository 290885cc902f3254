import { Counter, collectDefaultMetrics, Gauge, type Metric, Registry } from 'prom-client';
import type { HandleTable } from '../handles/handle-table.js';
import type { IdempotencyStore } from '../idempotency/store.js';
import type { LeaseTable } from '../leases/lease-table.js';
import { CallStats } from './call-stats.js';

/** The server's Prometheus metrics, in a registry of its own (several servers may share a process). */
export class Metrics {
  readonly registry = new Registry();
  /** The request counter and latency histogram (see call-stats.ts for why they are not prom-client's own). */
  private readonly calls = new CallStats();

  constructor(state: { handles: HandleTable; leases: LeaseTable }) {
    const registers = [this.registry];
    // The process's own: resident memory, heap, event-loop lag, GC, descriptors (prom-client's defaults).
    collectDefaultMetrics({ register: this.registry });
    // The registry reads a metric's name, type and samples and calls its reset(): see call-stats.ts.
    for (const metric of this.calls.metrics) this.registry.registerMetric(metric as unknown as Metric);
    new Gauge({
      name: 'leasegate_open_handles',
      help: 'Open file handles',
      registers,
      collect() {
        this.set(state.handles.size);
      },
    });
    new Gauge({
      name: 'leasegate_active_leases',
      help: 'Live leases',
      registers,
      collect() {
        this.set(state.leases.size);
      },
    });
    new Gauge({
      name: 'leasegate_open_descriptors',
      help: 'OS file descriptors held for handles',
      registers,
      collect() {
        this.set(state.handles.pool.size);
      },
    });
    new Gauge({
      name: 'leasegate_lease_tombstones',
      help: 'Ids of ended leases and their handles remembered to answer lease_expired / lease_revoked',
      registers,
      collect() {
        this.set(state.leases.tombstones.size);
      },
    });
    new Counter({
      name: 'leasegate_lease_expiries_total',
      help: 'Leases that expired',
      registers,
      collect() {
        this.reset();
        this.inc(state.leases.counts.expired);
      },
    });
    new Counter({
      name: 'leasegate_lease_revocations_total',
      help: 'Leases revoked',
      registers,
      collect() {
        this.reset();
        this.inc(state.leases.counts.revoked);
      },
    });
    new Counter({
      name: 'leasegate_descriptor_reopens_total',
      help: 'Descriptors reopened after the pool evicted them',
      registers,
      collect() {
        this.reset();
        this.inc(state.handles.pool.reopens);
      },
    });
  }

  /** Publishes the idempotency store's counters (it is made after the metrics). */
  watchIdempotency(store: IdempotencyStore): void {
    const registers = [this.registry];
    const stats = () => store.stats();
    new Gauge({
      name: 'leasegate_idempotency_records',
      help: 'Idempotency records held, running and completed',
      registers,
      collect() {
        this.set(stats().entries);
      },
    });
    new Gauge({
      name: 'leasegate_idempotency_bytes',
      help: 'Accounted bytes of the idempotency records held (bounded by --idempotency-max-bytes)',
      registers,
      collect() {
        this.set(stats().bytes);
      },
    });
    new Counter({
      name: 'leasegate_idempotency_expired_total',
      help: 'Idempotency records dropped when their retention ran out',
      registers,
      collect() {
        this.reset();
        this.inc(stats().expired);
      },
    });
    new Counter({
      name: 'leasegate_idempotency_evicted_total',
      help: 'Idempotency records dropped early to stay within the entry or byte bound (their retries run again)',
      registers,
      collect() {
        this.reset();
        this.inc(stats().evicted);
      },
    });
  }

  /** Records one call. */
  observe(method: string, code: string, seconds: number): void {
    this.calls.observe(method, code, seconds);
  }
}
