/**
 * The sequential latency client, as a child of the suite: RemotePrint one call
 * at a time through the typed client or raw undici (or raw undici posting to
 * the bare Fastify append route), timed call by call.
 *
 * A child of its own, as a user's program would be, rather than the suite's
 * process: by this section the suite has run autocannon for minutes, and its
 * heap (load results, autocannon's histograms) made the calls measured in it
 * pay for collecting the suite's garbage.
 *
 * Protocol (IPC): the child warms up, sends `warm`, waits for `go` (the suite
 * starts its noise meter), measures, sends `done` with the figures, waits for
 * `bye` (so that it cannot exit before the suite has read `done`) and exits.
 */
import { once } from 'node:events';
import { Pool } from 'undici';
import { createClient } from '../../client/index.js';
import { readConfig } from '../servers/child-protocol.js';
import { percentilesMs, Samples } from '../stats.js';
import { benchLine } from '../suite-context.js';

/** What the suite asks of the child (its JSON argument). */
export interface SequentialJob {
  readonly port: number;
  readonly via: 'typed-client' | 'undici';
  readonly calls: number;
  /** Calls before measuring, at least (the server's hot path needs a few thousand to be optimised)... */
  readonly warmupCalls: number;
  /** ...and for at least this long. */
  readonly warmupSeconds: number;
  /** A bare route to post to instead (the bare Fastify server's append, with its handle); raw undici only. */
  readonly bare?: { readonly path: string; readonly handle: string };
}

/** What the suite sends: start measuring, and may exit. */
export type SuiteToClient = 'go' | 'bye';

/** What the child reports. */
export type SequentialMessage =
  | { readonly type: 'warm' }
  | { readonly type: 'done'; readonly calls: number; readonly p50Ms: number; readonly p99Ms: number };

type Printer = { print: () => Promise<unknown>; close: () => Promise<void> };

async function typedClientPrinter(port: number): Promise<Printer> {
  const client = createClient({ baseUrl: `http://127.0.0.1:${port}` });
  const { handle } = await client.files.remoteOpen({ path: 'seq.log', mode: 'append', create: true });
  return { print: () => client.files.remotePrint({ handle, data: benchLine }), close: () => client.close() };
}

async function undiciPrinter(port: number, bare: SequentialJob['bare']): Promise<Printer> {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 1 });
  const post = async (path: string, body: object): Promise<unknown> => {
    const reply = await pool.request({
      method: 'POST',
      path,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await reply.body.text();
    if (reply.statusCode !== 200) throw new Error(`${path} failed: ${reply.statusCode} ${text}`);
    return JSON.parse(text);
  };
  if (bare !== undefined) {
    return {
      print: () => post(bare.path, { handle: bare.handle, data: benchLine }),
      close: () => pool.close(),
    };
  }
  const { handle } = (await post('/v1/Files/RemoteOpen', {
    path: 'seq.log',
    mode: 'append',
    create: true,
  })) as { handle: string };
  return {
    print: () => post('/v1/Files/RemotePrint', { handle, data: benchLine }),
    close: () => pool.close(),
  };
}

async function main(job: SequentialJob): Promise<void> {
  const printer =
    job.via === 'typed-client' ? await typedClientPrinter(job.port) : await undiciPrinter(job.port, job.bare);
  try {
    const warmUntil = performance.now() + job.warmupSeconds * 1000;
    for (let i = 0; i < job.warmupCalls || performance.now() < warmUntil; i++) await printer.print();
    const go = once(process, 'message');
    process.send?.({ type: 'warm' } satisfies SequentialMessage);
    await go;
    const samples = new Samples();
    for (let i = 0; i < job.calls; i++) {
      const t0 = performance.now();
      await printer.print();
      samples.add(performance.now() - t0);
    }
    const bye = once(process, 'message');
    process.send?.({
      type: 'done',
      calls: samples.length,
      ...percentilesMs(samples),
    } satisfies SequentialMessage);
    await bye;
  } finally {
    await printer.close();
  }
}

// The channel keeps the child alive while it waits for `go` and `bye` (undici's idle sockets do not).
process.channel?.ref();
await main(readConfig<SequentialJob>() as SequentialJob);
process.disconnect?.();
