/** A real leasegate server on port 0 or a Unix socket, over a temporary root folder, for client tests. */
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BuildOptions, buildServer } from '../../server/index.js';

/** A running server and where to reach it. */
export interface TestServer {
  /** The served root folder (real files). */
  readonly root: string;
  /** `http://127.0.0.1:<port>` (TCP) or `http://localhost` (with socketPath). */
  readonly baseUrl: string;
  readonly socketPath: string | undefined;
  /** GET a path (e.g. /metrics) and return the body text. */
  get(path: string): Promise<string>;
  close(): Promise<void>;
}

/** Starts a server listening on TCP port 0 or (`unix`) on a socket in a temporary folder. */
export async function startServer(
  listen: 'tcp' | 'unix' = 'tcp',
  options: Omit<BuildOptions, 'root' | 'stateDir'> = {},
): Promise<TestServer> {
  const dir = await mkdtemp(join(tmpdir(), 'leasegate-client-'));
  const root = join(dir, 'root');
  const app = await buildServer({ root, stateDir: join(dir, 'state'), logLevel: 'silent', ...options });
  let baseUrl: string;
  let socketPath: string | undefined;
  if (listen === 'unix') {
    socketPath = join(dir, 'leasegate.sock');
    await app.listen({ path: socketPath });
    baseUrl = 'http://localhost';
  } else {
    await app.listen({ host: '127.0.0.1', port: 0 });
    baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  }
  return {
    root,
    baseUrl,
    socketPath,
    async get(path) {
      const reply = await app.inject({ method: 'GET', url: path });
      return reply.body;
    },
    async close() {
      await app.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The value of a Prometheus gauge without labels in /metrics text. */
export function gauge(metrics: string, name: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no ${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}
