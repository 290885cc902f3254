import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { HandleTable } from '../handles/handle-table.js';
import type { LeaseTable } from '../leases/lease-table.js';

/** The server's Prometheus metrics, in a registry of its own (several servers may share a process). */
export class Metrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'method' | 'code'>;
  private readonly latency: Histogram<'method' | 'code'>;
  /** Label children cached per (method, code): the hot path does one Map lookup. */
  private readonly children = new Map<
    string,
    { count: Counter.Internal; time: Histogram.Internal<'method' | 'code'> }
  >();

  constructor(state: { handles: HandleTable; leases: LeaseTable }) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'leasegate_requests_total',
      help: 'RPC calls served, by method and result code',
      labelNames: ['method', 'code'],
      registers,
    });
    this.latency = new Histogram({
      name: 'leasegate_request_duration_seconds',
      help: 'RPC call latency, by method and result code',
      labelNames: ['method', 'code'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
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

  /** Records one call. */
  observe(method: string, code: string, seconds: number): void {
    const key = `${method}|${code}`;
    let child = this.children.get(key);
    if (child === undefined) {
      child = { count: this.requests.labels(method, code), time: this.latency.labels(method, code) };
      this.children.set(key, child);
    }
    child.count.inc();
    child.time.observe(seconds);
  }
}
