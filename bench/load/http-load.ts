/**
 * HTTP load with autocannon, run in this (load generator) process. Latencies
 * are taken from every 2xx response at µs precision (autocannon's own
 * histogram rounds to whole ms, too coarse at one connection).
 */
import autocannon from 'autocannon';
import { Samples } from '../stats.js';

/** One HTTP load: where, what, how hard. */
export interface HttpLoad {
  readonly url: string;
  readonly path: string;
  readonly body: string;
  readonly connections: number;
  readonly seconds: number;
  /** Sends a unique Idempotency-Key per request (`<prefix>-<n>`). */
  readonly uniqueKeys?: boolean;
}

/** What one load achieved, seen from the client. */
export interface LoadResult {
  /** Successful (2xx) calls. */
  readonly ok: number;
  /** Non-2xx replies, socket errors and timeouts. */
  readonly failed: number;
  readonly seconds: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

let keyRun = 0;

/** Runs one autocannon load and resolves with its counts and latencies. */
export function runHttpLoad(load: HttpLoad): Promise<LoadResult> {
  const samples = new Samples();
  const prefix = `bench-${process.pid}-${++keyRun}-${Date.now().toString(36)}`;
  let n = 0;
  const request: autocannon.Request = {
    method: 'POST',
    path: load.path,
    headers: { 'content-type': 'application/json' },
    body: load.body,
  };
  if (load.uniqueKeys) {
    request.setupRequest = (req) => {
      req.headers = { ...req.headers, 'idempotency-key': `${prefix}-${++n}` };
      return req;
    };
  }
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: load.url,
        connections: load.connections,
        duration: load.seconds,
        requests: [request],
        timeout: 10,
      },
      (error, result) => {
        if (error) return reject(error);
        const { p50, p99 } = samples.summary();
        resolve({
          ok: result['2xx'],
          failed: result.non2xx + result.errors + result.timeouts,
          seconds: result.duration,
          p50Ms: p50,
          p99Ms: p99,
        });
      },
    );
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      if (status >= 200 && status < 300) samples.add(ms);
    });
  });
}
