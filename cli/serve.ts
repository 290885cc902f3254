import { lstat, unlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect, isIP } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildServer, drainOnClose, requestTimeouts } from '../server/app.js';
import { clientErrorHandler } from '../server/errors/client-errors.js';
import {
  checkOptions,
  defaultServerOptions,
  type OptionDefinition,
  optionDefinitions,
  parseOptionValue,
  type ServerOptions,
} from '../server/options.js';

/** Defaults of `leasegate serve` (the embedded default a new user runs). */
export const serveDefaults: ServerOptions = {
  ...defaultServerOptions,
  root: './data',
  stateDir: './.leasegate',
};

/** `leasegate serve --help`. */
export function serveHelp(): string {
  const lines = optionDefinitions.map((d) => {
    const value = serveDefaults[d.key];
    const shown = value === undefined ? '(unset)' : String(value);
    const arg = d.kind === 'boolean' ? '' : d.values ? ` <${d.values.join('|')}>` : ' <value>';
    return `  --${d.flag}${arg}\n      ${d.help}. Default: ${shown}. Env: ${d.env}`;
  });
  return [
    'Usage: leasegate serve [options]',
    '',
    'Runs the gateway. Every option can also be set by its environment variable.',
    '',
    'Options:',
    ...lines,
    '  --help\n      show this help',
    '',
  ].join('\n');
}

/** Parsed `serve` arguments: the options, and which ones were given explicitly. */
export interface ServeArgs {
  options: ServerOptions;
  explicit: Set<keyof ServerOptions>;
}

/** Reads options: defaults, then LEASEGATE_* environment variables, then flags. */
export function parseServeArgs(argv: readonly string[], env: NodeJS.ProcessEnv): ServeArgs {
  const options: Record<string, unknown> = { ...serveDefaults };
  const explicit = new Set<keyof ServerOptions>();
  const byFlag = new Map<string, OptionDefinition>(optionDefinitions.map((d) => [d.flag, d]));
  for (const d of optionDefinitions) {
    const raw = env[d.env];
    if (raw === undefined) continue;
    try {
      options[d.key] = parseOptionValue(d, raw);
    } catch (error) {
      throw new Error(`${d.env}: ${(error as Error).message}`);
    }
    explicit.add(d.key);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) throw new Error(`unexpected argument "${arg}" (options start with --)`);
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    const negated = name.startsWith('no-') && byFlag.get(name.slice(3))?.kind === 'boolean';
    const d = byFlag.get(negated ? name.slice(3) : name);
    if (d === undefined) throw new Error(`unknown option --${name} (see leasegate serve --help)`);
    explicit.add(d.key);
    if (d.kind === 'boolean') {
      options[d.key] = negated ? false : inline === undefined ? true : parseOptionValue(d, inline);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`--${d.flag} needs a value`);
    options[d.key] = parseOptionValue(d, value);
  }
  // An empty state directory turns the redo log off: buildServer reads '' as none.
  const result = options as unknown as ServerOptions;
  checkOptions(result);
  return { options: result, explicit };
}

const isLoopback = (host: string): boolean =>
  host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));

/**
 * Runs `leasegate serve`; resolves when the server has stopped after SIGINT, SIGTERM or SIGHUP.
 * `--socket` alone serves only the socket; with an explicit `--port` or `--host` it serves both.
 */
export async function runServe(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(serveHelp());
    return 0;
  }
  let args: ServeArgs;
  try {
    args = parseServeArgs(argv, process.env);
    const { options } = args;
    if (!isLoopback(options.host) && options.tokens === undefined && !options.insecure) {
      throw new Error(
        `refusing to listen on ${options.host} without --tokens: add --tokens FILE, or --insecure to allow it`,
      );
    }
  } catch (error) {
    process.stderr.write(`leasegate serve: ${(error as Error).message}\n`);
    return 2;
  }
  const { options, explicit } = args;
  let app: FastifyInstance;
  try {
    app = await buildServer(options);
  } catch (error) {
    // The root or state directory cannot be used (or is locked by another server): a message, not a stack.
    process.stderr.write(`leasegate serve: ${(error as Error).message}\n`);
    return 1;
  }
  const tcp = options.socket === undefined || explicit.has('port') || explicit.has('host');
  // The socket server is made, and its close hooked, before the app is ready: Fastify takes no hooks after.
  const socketServer =
    options.socket === undefined
      ? undefined
      : createServer(requestTimeouts(options.requestTimeoutMs), (req, res) => app.routing(req, res));
  if (socketServer !== undefined) {
    // A request refused by Node's parser (too slow, malformed) gets the contract's body, as on TCP.
    socketServer.on('clientError', clientErrorHandler.bind(app));
    drainOnClose(app, socketServer, options.shutdownGraceMs, true);
  }
  const lines: string[] = [];
  try {
    if (tcp) {
      await app.listen({ host: options.host, port: options.port });
      const a = app.server.address();
      if (a !== null && typeof a !== 'string') {
        const url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
        lines.push(`leasegate listening on ${url} (docs: ${url}/docs)`);
      }
    } else {
      await app.ready();
    }
    if (socketServer !== undefined && options.socket !== undefined) {
      await listenOnSocket(socketServer, options.socket);
      lines.push(
        `leasegate listening on unix:${options.socket} (docs: curl --unix-socket ${options.socket} http://localhost/docs)`,
      );
    }
  } catch (error) {
    process.stderr.write(`leasegate serve: cannot listen: ${(error as Error).message}\n`);
    await app.close();
    return 1;
  }
  // Handlers first: a supervisor may signal as soon as it reads the line, and a signal without a
  // handler kills the process at once (exit by signal, nothing closed).
  const stopped = waitForSignal(app);
  process.stdout.write(`${lines.join('\n')}\n`);
  return stopped;
}

/**
 * Listens on a Unix domain socket with the app's routes. A stale socket file
 * (its server gone) is replaced; one a live server still accepts on is
 * refused, since unlinking it would silently take its clients away.
 */
async function listenOnSocket(server: Server, socketPath: string): Promise<void> {
  const existing = await lstat(socketPath).catch(() => undefined);
  if (existing?.isSocket()) {
    if (await answers(socketPath)) {
      throw new Error(`${socketPath} is in use by a running server: stop it, or give another --socket`);
    }
    await unlink(socketPath);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
}

/** Whether something accepts connections on a Unix socket (a stale socket file refuses them). */
function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = connect(socketPath);
    conn.once('connect', () => {
      conn.destroy();
      resolve(true);
    });
    conn.once('error', () => resolve(false));
  });
}

async function waitForSignal(app: FastifyInstance): Promise<number> {
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      app.log.info({ signal }, 'stopping');
      app.close().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    // A hang-up (a closed terminal, or a supervisor's reload signal) stops as cleanly, with the
    // shutdown checkpoint, rather than killing the process as Node's default does.
    process.once('SIGHUP', () => stop('SIGHUP'));
  });
}
