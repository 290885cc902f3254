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
  /** Sends a unique Idempotency-Key per request (`<prefix>-<n>`, n zero-padded to 12 digits). */
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

const keyDigits = 12;

/**
 * A unique Idempotency-Key per request, made cheaply: autocannon builds each
 * connection's request once, with a placeholder key of fixed width, and every
 * request is a copy of those bytes with the next number written over the
 * placeholder. autocannon's own way (setupRequest) rebuilds the whole request
 * per call: it took 77-80 % of the load generator's core at 32 connections
 * against 55 % without keys, close enough to saturation that the keyed runs
 * swung with every slow spell of the host (a server left idle between
 * batches spends more CPU a call).
 */
function uniqueKeys(request: autocannon.Request, prefix: string): (client: autocannon.Client) => void {
  const placeholder = `${prefix}-${'0'.repeat(keyDigits)}`;
  request.headers = { ...request.headers, 'idempotency-key': placeholder };
  let n = 0;
  return (client) => {
    const template = Buffer.from(client.getRequestBuffer());
    const digitsAt = template.indexOf(placeholder) + placeholder.length - keyDigits;
    if (digitsAt < prefix.length) throw new Error('autocannon request without the key placeholder');
    client.getRequestBuffer = () => {
      const bytes = Buffer.from(template);
      let rest = ++n;
      for (let i = digitsAt + keyDigits - 1; i >= digitsAt; i--) {
        bytes[i] = 0x30 + (rest % 10);
        rest = Math.floor(rest / 10);
      }
      return bytes;
    };
  };
}

/** Runs one autocannon load and resolves with its counts and latencies. */
export function runHttpLoad(load: HttpLoad): Promise<LoadResult> {
  const samples = new Samples();
  const prefix = `bench-${process.pid}-${++keyRun}-${Date.now().toString(36)}`;
  const request: autocannon.Request = {
    method: 'POST',
    path: load.path,
    headers: { 'content-type': 'application/json' },
    body: load.body,
  };
  const setupClient = load.uniqueKeys ? uniqueKeys(request, prefix) : undefined;
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: load.url,
        connections: load.connections,
        duration: load.seconds,
        requests: [request],
        timeout: 10,
        ...(setupClient ? { setupClient } : {}),
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
