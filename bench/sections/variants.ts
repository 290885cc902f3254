/**
 * The variants the suite measures, and how each is served and loaded: the
 * throughput section and the profiler share these.
 */
import { join } from 'node:path';
import { request } from 'undici';
import { connectGrpcLoader } from '../load/grpc-load.js';
import { type LoadResult, runHttpLoad } from '../load/http-load.js';
import type { ServerChild, ServerKind } from '../servers/spawn.js';
import { benchLine } from '../suite-context.js';

/** One thing being measured. */
export interface Variant {
  readonly id: string;
  readonly label: string;
  readonly server: ServerKind;
  readonly transport: 'http' | 'grpc';
  /** A unique Idempotency-Key on every request. */
  readonly uniqueKeys?: boolean;
}

/** The variants, in the order they alternate; the first is the baseline of every ratio. */
export const variants: readonly Variant[] = [
  { id: 'bare', label: 'bare Fastify append', server: 'bare-fastify', transport: 'http' },
  { id: 'leasegate', label: 'leasegate RemotePrint', server: 'leasegate', transport: 'http' },
  {
    id: 'leasegate-keys',
    label: 'leasegate RemotePrint + key',
    server: 'leasegate',
    transport: 'http',
    uniqueKeys: true,
  },
  { id: 'grpc', label: 'grpc-js RemotePrint', server: 'grpc', transport: 'grpc' },
];

/** The variant with `id` (throws for an unknown one). */
export function variantById(id: string): Variant {
  const variant = variants.find((v) => v.id === id);
  if (variant === undefined) throw new Error(`no variant ${id}`);
  return variant;
}

/** The JSON configuration of a variant's server child, with its files under `dir`. */
export function serverConfig(variant: Variant, dir: string): object {
  if (variant.server === 'leasegate') return { root: join(dir, 'root'), stateDir: join(dir, 'state') };
  return { file: join(dir, 'append.log') };
}

/** Opens the append handle a leasegate run prints through (RemoteOpen, append, create). */
export async function openLeasegateHandle(port: number): Promise<string> {
  const reply = await request(`http://127.0.0.1:${port}/v1/Files/RemoteOpen`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ path: 'bench.log', mode: 'append', create: true }),
  });
  const text = await reply.body.text();
  if (reply.statusCode !== 200) throw new Error(`RemoteOpen failed: ${reply.statusCode} ${text}`);
  return (JSON.parse(text) as { handle: string }).handle;
}

/** A load at the run's connections, for a given number of seconds; `close` ends its client. */
export interface Loader {
  run(seconds: number): Promise<LoadResult>;
  close(): void;
}

/** Connects the variant's load generator (autocannon or a grpc-js client) to `server`. */
export async function loader(
  variant: Variant,
  server: ServerChild,
  handle: string,
  connections: number,
): Promise<Loader> {
  const data = benchLine;
  if (variant.transport === 'grpc') {
    const grpc = await connectGrpcLoader(server.port);
    return { run: (seconds) => grpc.run({ handle, data }, connections, seconds), close: () => grpc.close() };
  }
  return {
    run: (seconds) =>
      runHttpLoad({
        url: `http://127.0.0.1:${server.port}`,
        path: variant.server === 'leasegate' ? '/v1/Files/RemotePrint' : '/append',
        body: JSON.stringify({ handle, data }),
        connections,
        seconds,
        uniqueKeys: variant.uniqueKeys === true,
      }),
    close: () => {},
  };
}
