/**
 * The hot-path candidates of a leasegate RemotePrint (and the bare route's
 * append, for comparison), as groups of profile frames: what each would buy
 * if it went away is (roughly) its inclusive time.
 */
import type { FocusGroup } from './summarise.js';

const inPackage = (url: string, name: string) => url.includes(`/node_modules/${name}/`);
const inLeasegate = (url: string, file: string) => url.endsWith(`/dist/${file}`);

/** The candidates, in the order the report lists them. */
export const remotePrintFocus: readonly FocusGroup[] = [
  { label: 'response socket write (writev syscall)', matches: (f, u) => f === 'writev' && u === '' },
  { label: 'append: fs.writeSync', matches: (f, u) => f === 'writeSync' && u === 'node:fs' },
  { label: 'append: fs.fstatSync for the offset', matches: (f, u) => f === 'fstatSync' && u === 'node:fs' },
  {
    label: 'append: FileHandle.write (bare route; threadpool time not sampled)',
    matches: (f, u) => f === 'write' && u === 'node:internal/fs/promises',
  },
  { label: 'body JSON parse (secure-json-parse)', matches: (_f, u) => inPackage(u, 'secure-json-parse') },
  {
    label: 'body validation (Fastify → Ajv)',
    matches: (f, u) => f === 'validate' && inPackage(u, 'fastify') && u.endsWith('/lib/validation.js'),
  },
  {
    label: 'response serialisation (fast-json-stringify)',
    matches: (f, u) => f === 'serialize' && inPackage(u, 'fastify') && u.endsWith('/lib/reply.js'),
  },
  { label: 'request id (genReqId → randomUUID)', matches: (f) => f === 'genReqId' || f === 'randomUUID' },
  { label: 'per-request child logger (pino)', matches: (_f, u) => inPackage(u, 'pino') },
  {
    label: 'metrics (prom-client, Metrics.observe)',
    matches: (f, u) =>
      inPackage(u, 'prom-client') || (f === 'observe' && inLeasegate(u, 'server/metrics/metrics.js')),
  },
  {
    label: 'onResponse hooks (all)',
    matches: (f, u) => inPackage(u, 'fastify') && /onResponse|onResFinished/.test(f),
  },
  {
    label: 'call context (headers, deadline, key parse)',
    matches: (f, u) => f === 'callContext' && inLeasegate(u, 'server/rpc/call-context.js'),
  },
  {
    label: 'RemotePrint service (handles.get, write, renew)',
    matches: (f, u) => f === 'remotePrint' && inLeasegate(u, 'server/services/files.js'),
  },
  {
    label: 'idempotency: fingerprint (canonical JSON + SHA-256)',
    matches: (f, u) => f === 'fingerprint' && inLeasegate(u, 'server/idempotency/fingerprint.js'),
  },
  {
    label: 'idempotency: store begin + complete',
    matches: (f, u) => (f === 'begin' || f === 'complete') && u.includes('/dist/server/idempotency/'),
  },
  {
    label: 'lease renew',
    matches: (f, u) => f === 'renew' && inLeasegate(u, 'server/leases/lease-table.js'),
  },
  { label: 'garbage collector', matches: (f) => f === '(garbage collector)' },
];
