/**
 * The real leasegate server (`buildServer` with its defaults, leases on, a
 * state folder as the CLI has) for the suite and for profiling:
 * `node --cpu-prof dist/bench/servers/leasegate.js '{"root": "/tmp/x"}'`.
 */
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { buildServer, type ServerOptions } from '../../server/index.js';
import { announce, closeOnStop, readConfig } from './child-protocol.js';

type Config = Pick<ServerOptions, 'root' | 'stateDir' | 'fsync' | 'logLevel'>;

const config = readConfig<Config>();
const root = config.root ?? 'bench-root';
mkdirSync(root, { recursive: true });
const app = await buildServer({
  ...config,
  root,
  stateDir: config.stateDir ?? join(root, '..', 'state'),
  port: 0,
});
await app.listen({ host: '127.0.0.1', port: 0 });
announce((app.server.address() as AddressInfo).port, '');
closeOnStop(() => app.close());
