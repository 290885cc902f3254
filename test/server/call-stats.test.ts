/**
 * The per-call metrics are counted outside prom-client (see
 * server/metrics/call-stats.ts) but must read exactly as prom-client's own
 * Counter and Histogram would: the same observations go to both, and the
 * registries' text, JSON and reset must agree.
 */
import { Counter, Histogram, Registry, type RegistryContentType } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CallStats, latencyBuckets } from '../../server/metrics/call-stats.js';

/** Calls of several methods and codes, with latencies on, between and beyond the bucket bounds. */
const calls: [string, string, number][] = [
  ['Files.RemotePrint', 'ok', 0.00005],
  ['Directories.Stat', 'ok', 0.002], // series interleaved: they are listed in the order first seen
  ['Files.RemotePrint', 'ok', 0.0001],
  ['Files.RemotePrint', 'ok', 0.00011],
  ['Files.RemotePrint', 'ok', 0.003],
  ['Files.RemotePrint', 'sequence_gap', 0.0004],
  ['Directories.Stat', 'not_found', 5],
  ['Directories.Stat', 'not_found', 7.5],
  ['Directories.Stat', 'ok', 0],
  ['Files.RemotePrint', 'ok', 1],
];

/** Both registries, fed the same calls. */
function registries(openMetrics = false) {
  const ours = new Registry<RegistryContentType>();
  const stats = new CallStats();
  for (const metric of stats.metrics) ours.registerMetric(metric as never);

  const theirs = new Registry<RegistryContentType>();
  if (openMetrics) {
    ours.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    theirs.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  }
  const counter = new Counter({
    name: 'leasegate_requests_total',
    help: 'RPC calls served, by method and result code',
    labelNames: ['method', 'code'],
    registers: [theirs],
  });
  const histogram = new Histogram({
    name: 'leasegate_request_duration_seconds',
    help: 'RPC call latency, by method and result code',
    labelNames: ['method', 'code'],
    buckets: [...latencyBuckets],
    registers: [theirs],
  });
  for (const [method, code, seconds] of calls) {
    stats.observe(method, code, seconds);
    counter.labels(method, code).inc();
    histogram.labels(method, code).observe(seconds);
  }
  return { ours, theirs };
}

describe('CallStats', () => {
  it("renders the same Prometheus text as prom-client's Counter and Histogram", async () => {
    const { ours, theirs } = registries();
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    // Not vacuous: a value on a bound counts in that bucket, one past the last bound only in +Inf.
    expect(text).toContain(
      'leasegate_request_duration_seconds_bucket{le="0.0001",method="Files.RemotePrint",code="ok"} 2',
    );
    expect(text).toContain(
      'leasegate_request_duration_seconds_bucket{le="5",method="Directories.Stat",code="not_found"} 1',
    );
    expect(text).toContain(
      'leasegate_request_duration_seconds_bucket{le="+Inf",method="Directories.Stat",code="not_found"} 2',
    );
    expect(text).toContain('leasegate_requests_total{method="Files.RemotePrint",code="ok"} 5');
  });

  it('does not count a latency that is not a finite number (prom-client refused it)', async () => {
    const registry = new Registry();
    const stats = new CallStats();
    for (const metric of stats.metrics) registry.registerMetric(metric as never);
    for (const seconds of [Number.NaN, Number.POSITIVE_INFINITY, 0.002]) stats.observe('M.m', 'ok', seconds);
    const text = await registry.metrics();
    expect(text).toContain('leasegate_requests_total{method="M.m",code="ok"} 1');
    expect(text).toContain('leasegate_request_duration_seconds_sum{method="M.m",code="ok"} 0.002');
  });

  it('renders the same OpenMetrics text', async () => {
    const { ours, theirs } = registries(true);
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain('leasegate_requests_total{method="Files.RemotePrint",code="ok"} 5');
  });

  it('gives the same JSON (but for exemplars, which it does not keep), and resets with the registry', async () => {
    const { ours, theirs } = registries();
    const withoutExemplars = (await theirs.getMetricsAsJSON()).map((m) => ({
      ...m,
      values: m.values.map((v) => {
        const { exemplar: _, ...rest } = v as typeof v & { exemplar?: unknown };
        return rest;
      }),
    }));
    expect(await ours.getMetricsAsJSON()).toStrictEqual(withoutExemplars);
    ours.resetMetrics();
    theirs.resetMetrics();
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).not.toContain('method=');
  });
});
