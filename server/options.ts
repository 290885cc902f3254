/**
 * Every server option, defined once: its type, default, CLI flag, environment
 * variable and help text. The CLI, `buildServer` and `leasegate serve --help`
 * all read this table.
 */
import { defaultBatchMs } from './redo-log/log-writer.js';

/** Server options as `buildServer` takes them (all have defaults). */
export interface ServerOptions {
  /** TCP host to listen on. */
  host: string;
  /** TCP port; 0 picks any free port. */
  port: number;
  /** Unix domain socket path to listen on (alone or beside TCP). */
  socket: string | undefined;
  /** Folder served to clients; no path leaves it. */
  root: string;
  /** Folder for the server's own state (redo log, checkpoints); undefined or empty: none. */
  stateDir: string | undefined;
  /** Largest request body in bytes. */
  bodyLimit: number;
  /** Most time a client has to send a whole request (headers and body), in ms. */
  requestTimeoutMs: number;
  /** How long shutdown waits for requests in flight before it closes their connections, in ms. */
  shutdownGraceMs: number;
  /** pino log level: fatal, error, warn, info, debug, trace or silent. */
  logLevel: string;
  /** TTL of a lease when the caller asks for none, in ms. */
  leaseDefaultTtlMs: number;
  /** Smallest TTL granted, in ms. */
  leaseMinTtlMs: number;
  /** Largest TTL granted, in ms. */
  leaseMaxTtlMs: number;
  /** Most OS descriptors held open for handles at once (handles beyond it reopen on demand). */
  maxDescriptors: number;
  /** Most open handles per principal. */
  maxHandlesPerPrincipal: number;
  /** Most live leases per principal. */
  maxLeasesPerPrincipal: number;
  /** Requests per second per principal (0 = unlimited). */
  rateLimit: number;
  /** Most calls in one JSON-RPC batch (the rate limit counts a batch as one request). */
  maxBatchCalls: number;
  /**
   * Most bytes of answers one JSON-RPC request builds; a batch's calls after
   * that do not run. Default 16 MiB: a batch of a hundred 1 MiB reads made a
   * 140-500 MB answer from a 2-14 kB request (several GB of memory with a few
   * at once, as much again in the redo log with a key), while one read's
   * answer is at most ~6 MiB.
   */
  maxResponseBytes: number;
  /** Largest deadline a caller may ask for with Rpc-Timeout-Ms, and the deadline of calls that send none, in ms. */
  maxDeadlineMs: number;
  /** Tokens file (JSON) mapping bearer tokens to principals; unset = no authentication. */
  tokens: string | undefined;
  /** Allow a non-loopback listener without tokens. */
  insecure: boolean;
  /** Answer non-idempotent calls without an Idempotency-Key with 400 idempotency_key_missing. */
  requireIdempotencyKey: boolean;
  /** How long idempotency records are kept, in ms. */
  idempotencyRetentionMs: number;
  /** Most idempotency records kept; the oldest are dropped past it. */
  idempotencyMaxEntries: number;
  /** Most bytes of stored responses kept; the oldest are dropped past it. */
  idempotencyMaxBytes: number;
  /** When the redo log reaches the disk: always, batch (group commit) or never. */
  fsync: 'always' | 'batch' | 'never';
  /** With `fsync: 'batch'`, how long after an append the background fdatasync runs, in ms. */
  fsyncBatchMs: number;
}

type OptionKind = 'string' | 'number' | 'boolean' | 'enum';

/** One option's CLI and environment definition. */
export interface OptionDefinition {
  readonly key: keyof ServerOptions;
  readonly flag: string;
  readonly env: string;
  readonly kind: OptionKind;
  readonly values?: readonly string[];
  readonly help: string;
}

/** Defaults for a library user; the CLI adds `stateDir: './.leasegate'` and `root: './data'`. */
export const defaultServerOptions: ServerOptions = {
  host: '127.0.0.1',
  port: 8080,
  socket: undefined,
  root: './data',
  stateDir: undefined,
  bodyLimit: 1_048_576,
  requestTimeoutMs: 30_000,
  shutdownGraceMs: 10_000,
  logLevel: 'info',
  leaseDefaultTtlMs: 30_000,
  leaseMinTtlMs: 1_000,
  leaseMaxTtlMs: 600_000,
  maxDescriptors: 1_024,
  maxHandlesPerPrincipal: 200_000,
  maxLeasesPerPrincipal: 200_000,
  rateLimit: 0,
  maxBatchCalls: 100,
  maxResponseBytes: 16 * 1_048_576,
  maxDeadlineMs: 300_000,
  tokens: undefined,
  insecure: false,
  requireIdempotencyKey: false,
  idempotencyRetentionMs: 86_400_000,
  idempotencyMaxEntries: 1_000_000,
  idempotencyMaxBytes: 256 * 1_048_576,
  fsync: 'batch',
  fsyncBatchMs: defaultBatchMs,
};

/** An option's flag: its key in kebab-case. */
const flagOf = (key: keyof ServerOptions): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

const def = (
  key: keyof ServerOptions,
  kind: OptionKind,
  help: string,
  values?: readonly string[],
): OptionDefinition => {
  const flag = flagOf(key);
  const env = `LEASEGATE_${flag.replace(/-/g, '_').toUpperCase()}`;
  return values ? { key, flag, env, kind, values, help } : { key, flag, env, kind, help };
};

/** The option table, in the order `--help` prints it. */
export const optionDefinitions: readonly OptionDefinition[] = [
  def('host', 'string', 'TCP host to listen on'),
  def('port', 'number', 'TCP port (0 = any free port)'),
  def('socket', 'string', 'Unix domain socket path to listen on, alone or beside TCP'),
  def('root', 'string', 'folder served to clients (created if missing)'),
  def(
    'stateDir',
    'string',
    'folder for the redo log and its checkpoints, created if missing; empty = none (leases, handles and idempotency records live in memory only)',
  ),
  def('bodyLimit', 'number', 'largest request body in bytes'),
  def(
    'requestTimeoutMs',
    'number',
    'most time a client has to send a whole request, headers and body (ms); a slower one gets 408 and its connection is closed',
  ),
  def(
    'shutdownGraceMs',
    'number',
    'on SIGTERM/SIGINT, how long requests in flight may finish before their connections are closed and the shutdown checkpoint is written (ms)',
  ),
  def('logLevel', 'enum', 'log level', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  def('leaseDefaultTtlMs', 'number', 'lease TTL when the caller asks for none (ms)'),
  def('leaseMinTtlMs', 'number', 'smallest lease TTL granted (ms)'),
  def('leaseMaxTtlMs', 'number', 'largest lease TTL granted (ms)'),
  def('maxDescriptors', 'number', 'most OS descriptors held for handles at once'),
  def('maxHandlesPerPrincipal', 'number', 'most open handles per principal'),
  def('maxLeasesPerPrincipal', 'number', 'most live leases per principal'),
  def(
    'rateLimit',
    'number',
    'requests per second per principal, or per client address for calls without a valid token (0 = unlimited)',
  ),
  def('maxBatchCalls', 'number', 'most calls in one JSON-RPC batch (a larger batch is refused whole)'),
  def(
    'maxResponseBytes',
    'number',
    "most bytes of answers one JSON-RPC request builds (a batch's later calls do not run)",
  ),
  def('maxDeadlineMs', 'number', 'cap on Rpc-Timeout-Ms, and the deadline of calls without one (ms)'),
  def(
    'tokens',
    'string',
    'JSON tokens file: {"<token>": {"principal": "...", "readOnly"?: bool, "root"?: "sub/folder"}}',
  ),
  def('insecure', 'boolean', 'allow a non-loopback listener without tokens'),
  def('requireIdempotencyKey', 'boolean', 'refuse non-idempotent calls that carry no Idempotency-Key'),
  def('idempotencyRetentionMs', 'number', 'how long idempotency records are kept (ms)'),
  def('idempotencyMaxEntries', 'number', 'most idempotency records kept (oldest dropped first)'),
  def('idempotencyMaxBytes', 'number', 'most bytes of stored responses kept (oldest dropped first)'),
  def(
    'fsync',
    'enum',
    'when the redo log reaches the disk: always (replies wait for fdatasync, shared by concurrent calls; survives power loss), batch (fdatasync in the background within --fsync-batch-ms; a process crash loses nothing acknowledged, power loss the last few ms), never (the kernel writes back; a process crash loses nothing acknowledged)',
    ['always', 'batch', 'never'],
  ),
  def(
    'fsyncBatchMs',
    'number',
    'with --fsync batch, how long after an append the background fdatasync runs (ms, 1-1000)',
  ),
];

/** Parses one option value from text (CLI or environment); throws a message naming the option. */
export function parseOptionValue(definition: OptionDefinition, raw: string): string | number | boolean {
  switch (definition.kind) {
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n) || n < 0 || !Number.isInteger(n)) {
        throw new Error(`--${definition.flag} must be a whole number >= 0, got "${raw}"`);
      }
      return n;
    }
    case 'boolean': {
      // An empty value (LEASEGATE_INSECURE=, --insecure=) is refused: it meant true, so an empty
      // variable in a deployment turned authentication off. A bare flag (--insecure) is true.
      if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
      if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
      throw new Error(`--${definition.flag} must be true or false, got "${raw}"`);
    }
    case 'enum':
      if (!definition.values?.includes(raw)) {
        throw new Error(`--${definition.flag} must be one of ${definition.values?.join(', ')}, got "${raw}"`);
      }
      return raw;
    default:
      return raw;
  }
}

/** The longest delay Node's timers take (2^31-1 ms, about 24.8 days). */
const maxTimerMs = 2_147_483_647;

/**
 * The smallest value of each option below which the server runs but cannot
 * serve: every call would fail or every answer be forgotten (`--max-deadline-ms
 * 0` was accepted and failed every call). Each with the reason the error gives.
 */
const minimums: readonly (readonly [keyof ServerOptions, number, string])[] = [
  ['bodyLimit', 1_024, 'a smaller limit refuses ordinary calls'],
  ['requestTimeoutMs', 1, 'the time a client has to send its request'],
  ['leaseMinTtlMs', 1, 'a lease needs some time to live'],
  ['maxDescriptors', 1, 'handles need a descriptor to read or write'],
  ['maxHandlesPerPrincipal', 1, 'with 0 every RemoteOpen fails'],
  ['maxLeasesPerPrincipal', 1, 'with 0 every Grant and RemoteOpen fails'],
  ['maxBatchCalls', 1, 'with 0 every batch is refused'],
  ['maxResponseBytes', 1_048_576, 'a smaller bound refuses batches of ordinary reads'],
  ['maxDeadlineMs', 100, 'a shorter cap fails calls before they can run'],
  ['idempotencyRetentionMs', 1_000, 'a shorter retention forgets answers before a client can retry'],
  ['idempotencyMaxEntries', 1, 'with 0 no answer is kept for a retry'],
  ['idempotencyMaxBytes', 1, 'with 0 no answer is kept for a retry'],
];

/** Checks each option's range and the relations between them; throws a message naming the option at fault. */
export function checkOptions(options: ServerOptions): void {
  for (const [key, min, why] of minimums) {
    if ((options[key] as number) < min) throw new Error(`--${flagOf(key)} must be at least ${min}: ${why}`);
  }
  if (options.leaseMinTtlMs > options.leaseMaxTtlMs) {
    throw new Error('--lease-min-ttl-ms must not exceed --lease-max-ttl-ms');
  }
  // Refused rather than clamped: a lease would silently get a TTL other than the one configured.
  if (
    options.leaseDefaultTtlMs < options.leaseMinTtlMs ||
    options.leaseDefaultTtlMs > options.leaseMaxTtlMs
  ) {
    throw new Error(
      `--lease-default-ttl-ms (${options.leaseDefaultTtlMs}) must lie between --lease-min-ttl-ms ` +
        `(${options.leaseMinTtlMs}) and --lease-max-ttl-ms (${options.leaseMaxTtlMs})`,
    );
  }
  // Node's timers take at most 2^31-1 ms; a larger delay silently becomes 1 ms.
  if (options.requestTimeoutMs > maxTimerMs) {
    throw new Error(`--request-timeout-ms must be between 1 and ${maxTimerMs}`);
  }
  if (options.shutdownGraceMs > maxTimerMs) {
    throw new Error(`--shutdown-grace-ms must be at most ${maxTimerMs}`);
  }
  if (options.fsyncBatchMs < 1 || options.fsyncBatchMs > 1000) {
    throw new Error('--fsync-batch-ms must be between 1 and 1000');
  }
  if (options.port > 65_535) throw new Error('--port must be at most 65535');
}
