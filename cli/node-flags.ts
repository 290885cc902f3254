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
 *
 * `--heap-growing-percent=50`: after a full GC V8 lets the old generation grow
 * to a multiple of what survived before the next one, a multiple it picks
 * between 1.1 and 4 from how fast GC runs; on this path it picked about 3. The
 * server keeps ~17 MiB live, but ~200 KiB of each scavenge's survivors are
 * promoted and die soon after (objects of calls in flight; 25 MiB in 3 s at
 * 128 connections, counted with --trace-gc-nvp), so the old generation grew
 * to ~50 MiB between full GCs. A fixed 1.5 lets it reach ~30 MiB: full GCs
 * come about three times as often, each marking the same ~17 MiB (mostly on
 * V8's background threads). Measured with a script running the bench's
 * leasegate child and autocannon load (3 s after 1 s warm-up, server on one
 * core), peak RSS without keys / with keys, 2–3 rounds each:
 *   8 MiB alone: 114–142 / 117–129 MiB at 128 connections, 115–119 / 117–125 at 32;
 *   with 50: 98–101 / 106–115 at 128, 95–100 / 103–110 at 32;
 *   with 30: 97–98 / 104–109 at 128;  16 MiB semi-spaces with 50: 114 / 119 at 128.
 * CPU µs per call moved within the host's noise (50–110 µs between rounds of
 * the same flags that hour); the bench's CPU and instruction figures judge it.
 * To run with other flags: `node <flags> dist/cli/main.js serve`.
 */
export const serveNodeFlags: readonly string[] = ['--max-semi-space-size=8', '--heap-growing-percent=50'];
