/** Reading Prometheus text from /metrics in tests. */

/** The value of a Prometheus gauge without labels in /metrics text. */
export function gauge(metrics: string, name: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no ${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}
