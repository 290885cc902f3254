/**
 * The per-call metrics (`leasegate_requests_total` and
 * `leasegate_request_duration_seconds`, by method and code), counted in plain
 * numbers on the hot path and shown through prom-client's registry on scrape.
 *
 * Why not prom-client's Counter and Histogram: their labelled `inc` and
 * `observe` build a label object, validate it and hash it into a string key on
 * every call, even through a cached `labels()` child: 0.9 µs a call in a loop
 * of 300 000 calls (Node 20), and 2–3 % of a RemotePrint's CPU under load
 * (perf, 32 connections). Here a call is two lookups in small Maps keyed by
 * strings that are constants of the route and the code, a bucket search and
 * three additions. The registry still renders the text (its formatting,
 * escaping and content types), from `getForPromString`/`get`, and resets
 * through `reset`, which is all it asks of a metric.
 */

/** Labels of a sample as the registry formats them. */
type Labels = Record<string, string | number>;

/** One sample in the shape prom-client's registry renders (`metricName{labels,sharedLabels} value`). */
interface Sample {
  /** Defaults to the metric's name. */
  readonly metricName?: string;
  readonly labels: Labels;
  readonly sharedLabels?: Labels;
  readonly value: number;
}

/** A metric as prom-client's registry reads it. */
interface RegistryMetric {
  /** The registry may rewrite it (an OpenMetrics registry strips a counter's `_total`). */
  name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  getForPromString(): Promise<RenderedMetric>;
  get(): Promise<RenderedMetric>;
  reset(): void;
}

interface RenderedMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  readonly values: Sample[];
}

/** The counts of one (method, code). */
class Series {
  count = 0;
  sum = 0;

  constructor(
    readonly labels: { readonly method: string; readonly code: string },
    /** Calls per bucket (not cumulative); the last one is above every bound. */
    readonly buckets: Float64Array,
  ) {}
}

/** Upper bounds of the latency buckets, in seconds. */
export const latencyBuckets: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5,
];

export class CallStats {
  /** By method, then by code. */
  private series = new Map<string, Map<string, Series>>();
  /** The same, in the order they were first seen (prom-client's order). */
  private ordered: Series[] = [];

  /** The request counter and the latency histogram, for `registry.registerMetric`. */
  readonly metrics: readonly RegistryMetric[] = [
    this.metric('leasegate_requests_total', 'RPC calls served, by method and result code', 'counter'),
    this.metric(
      'leasegate_request_duration_seconds',
      'RPC call latency, by method and result code',
      'histogram',
    ),
  ];

  /** Records one call (a latency that is not a finite number is not counted: prom-client threw on it). */
  observe(method: string, code: string, seconds: number): void {
    if (!Number.isFinite(seconds)) return;
    let byCode = this.series.get(method);
    if (byCode === undefined) {
      byCode = new Map();
      this.series.set(method, byCode);
    }
    let series = byCode.get(code);
    if (series === undefined) {
      series = new Series({ method, code }, new Float64Array(latencyBuckets.length + 1));
      byCode.set(code, series);
      this.ordered.push(series);
    }
    let bucket = 0;
    while (bucket < latencyBuckets.length && seconds > (latencyBuckets[bucket] as number)) bucket++;
    series.buckets[bucket] = (series.buckets[bucket] as number) + 1;
    series.count++;
    series.sum += seconds;
  }

  private metric(name: string, help: string, type: 'counter' | 'histogram'): RegistryMetric {
    const render = async (): Promise<RenderedMetric> => ({
      name: metric.name,
      help,
      type,
      aggregator: 'sum',
      values: type === 'counter' ? this.counterSamples() : this.histogramSamples(metric.name),
    });
    const metric: RegistryMetric = {
      name,
      help,
      type,
      aggregator: 'sum',
      getForPromString: render,
      // The JSON view has the series' labels merged in, as prom-client's own metrics give them.
      get: async () => {
        const rendered = await render();
        return {
          ...rendered,
          values: rendered.values.map(({ metricName, labels, sharedLabels, value }) =>
            metricName === undefined
              ? { labels, value }
              : { metricName, labels: { ...labels, ...sharedLabels }, value },
          ),
        };
      },
      // Both metrics show the same series: resetting one (the registry resets them together) resets both.
      reset: () => {
        this.series = new Map();
        this.ordered = [];
      },
    };
    return metric;
  }

  private counterSamples(): Sample[] {
    return this.ordered.map((s) => ({ labels: s.labels, value: s.count }));
  }

  private histogramSamples(name: string): Sample[] {
    const samples: Sample[] = [];
    for (const s of this.ordered) {
      let cumulative = 0;
      latencyBuckets.forEach((le, i) => {
        cumulative += s.buckets[i] as number;
        samples.push({
          metricName: `${name}_bucket`,
          labels: { le },
          sharedLabels: s.labels,
          value: cumulative,
        });
      });
      samples.push(
        { metricName: `${name}_bucket`, labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count },
        { metricName: `${name}_sum`, labels: {}, sharedLabels: s.labels, value: s.sum },
        { metricName: `${name}_count`, labels: {}, sharedLabels: s.labels, value: s.count },
      );
    }
    return samples;
  }
}
