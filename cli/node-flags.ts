/**
 * Flags for Node itself when it runs `leasegate serve` (the `leasegate`
 * shebang and `npm start` pass them; so does the benchmark's leasegate child).
 *
 * `--max-semi-space-size=8` (MiB): V8 grows the young generation to 16 MiB
 * semi-spaces under a high allocation rate, which took the server to about
 * 130 MiB RSS at 128 connections; 4 MiB semi-spaces kept it at 107 MiB but
 * promoted the objects of requests in flight at each scavenge, and with
 * idempotency keys the old generation's GC then cost twice the CPU per call.
 * Measured with `node dist/bench/main.js --only throughput --connections 32,128
 * --rounds 2` (server pinned to one core), RSS and CPU µs per call at 128
 * connections, without keys / with keys:
 *   4 MiB: 108 / 126 MiB, 55 / 110 µs;  8 MiB: 114 / 125 MiB, 53 / 68 µs;
 *   16 MiB (Node's default): 130 / 135 MiB, 46 / 60 µs.
 * To run with other flags: `node <flags> dist/cli/main.js serve`.
 */
export const serveNodeFlags: readonly string[] = ['--max-semi-space-size=8'];
