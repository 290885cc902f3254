/**
 * Flags for Node itself when it runs `leasegate serve` (the `leasegate`
 * shebang and `npm start` pass them; so does the benchmark's leasegate child).
 *
 * `--max-semi-space-size=4` (MiB): V8's young generation grows to 16 MiB
 * semi-spaces by default under a high allocation rate, and objects of
 * requests still in flight at each scavenge are promoted until a full GC, so
 * at 128 connections the server peaked at 151-163 MiB RSS with 16 MiB live.
 * With 4 MiB semi-spaces it peaks at about 113 MiB at the same throughput
 * and CPU cost per request (measured with autocannon -c 128, server pinned to
 * one core). To run with other flags: `node <flags> dist/cli/main.js serve`.
 */
export const serveNodeFlags: readonly string[] = ['--max-semi-space-size=4'];
