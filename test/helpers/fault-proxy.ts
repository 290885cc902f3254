/**
 * A fault-injecting HTTP proxy for tests: it forwards requests to a leasegate
 * server and, per request and by a seeded PRNG, drops the request, drops the
 * reply after the server acted, delays it (so requests overtake each other),
 * or sends it twice (the copy later, its reply discarded). It counts what it
 * did, so a test can check the faults really happened.
 */
import { Agent, createServer, type IncomingHttpHeaders, type IncomingMessage, request } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the proxy did with one request. */
export type FaultAction = 'pass' | 'dropRequest' | 'dropReply' | 'delay' | 'duplicate';

/** Probability of each fault per request (the rest pass untouched). */
export interface FaultProbabilities {
  /** Destroy the client's socket without forwarding (the server never sees the request). */
  dropRequest?: number;
  /** Forward, wait for the server's reply, then destroy the client's socket (the server acted). */
  dropReply?: number;
  /** Wait a random time up to `maxDelayMs` before forwarding. */
  delay?: number;
  /** Forward, and forward a copy again up to `maxDelayMs` later, discarding the copy's reply. */
  duplicate?: number;
}

/** Where the proxy forwards to. */
export type Upstream = { host: string; port: number } | { socketPath: string };

/** Options of `startFaultProxy`. */
export interface FaultProxyOptions {
  upstream: Upstream;
  /** PRNG seed: the same seed makes the same choices in the same request order. */
  seed?: number;
  faults?: FaultProbabilities;
  /** Upper bound of delays, in ms (default 20). */
  maxDelayMs?: number;
  /** Lower bound of the `delay` action's wait, in ms (default 0). */
  minDelayMs?: number;
  /** Which requests may be faulted (default: every POST); the others always pass. */
  filter?: (request: IncomingMessage) => boolean;
}

/** A running fault proxy. */
export interface FaultProxy {
  /** `http://127.0.0.1:<port>`, to use as a client's baseUrl. */
  readonly url: string;
  /** How many requests got each action. */
  readonly counts: Readonly<Record<FaultAction, number>>;
  /** Changes the fault probabilities from now on (e.g. all zero to let a test settle). */
  setFaults(faults: FaultProbabilities): void;
  /** Stops accepting, ends open connections and waits for pending duplicate sends. */
  close(): Promise<void>;
}

/** mulberry32: a tiny seeded PRNG with values in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface UpstreamReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const hopByHop = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
  'te',
]);

function endToEnd(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !hopByHop.has(name)));
}

async function readBody(stream: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Starts a fault proxy on 127.0.0.1 and a free port. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const random = mulberry32(options.seed ?? 1);
  const maxDelayMs = options.maxDelayMs ?? 20;
  const minDelayMs = Math.min(options.minDelayMs ?? 0, maxDelayMs);
  const filter = options.filter ?? ((req: IncomingMessage) => req.method === 'POST');
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const counts: Record<FaultAction, number> = {
    pass: 0,
    dropRequest: 0,
    dropReply: 0,
    delay: 0,
    duplicate: 0,
  };
  const pending = new Set<Promise<unknown>>();
  let faults: FaultProbabilities = options.faults ?? {};

  const choose = (req: IncomingMessage): FaultAction => {
    if (!filter(req)) return 'pass';
    let x = random();
    for (const action of ['dropRequest', 'dropReply', 'delay', 'duplicate'] as const) {
      x -= faults[action] ?? 0;
      if (x < 0) return action;
    }
    return 'pass';
  };

  const forward = (req: IncomingMessage, body: Buffer): Promise<UpstreamReply> =>
    new Promise((resolve, reject) => {
      const headers = { ...endToEnd(req.headers), 'content-length': String(body.length) };
      const target = 'socketPath' in options.upstream ? options.upstream : { ...options.upstream };
      const upstream = request({ ...target, agent, method: req.method, path: req.url, headers }, (reply) => {
        readBody(reply).then(
          (replyBody) =>
            resolve({ status: reply.statusCode ?? 502, headers: reply.headers, body: replyBody }),
          reject,
        );
      });
      upstream.on('error', reject);
      upstream.end(body);
    });

  const track = <T>(promise: Promise<T>): Promise<T> => {
    pending.add(promise);
    void promise.finally(() => pending.delete(promise)).catch(() => {});
    return promise;
  };

  const server = createServer((req, res) => {
    const work = (async () => {
      const body = await readBody(req);
      const action = choose(req);
      counts[action]++;
      if (action === 'dropRequest') {
        req.socket.destroy();
        return;
      }
      if (action === 'delay') await sleep(minDelayMs + random() * (maxDelayMs - minDelayMs));
      if (action === 'duplicate') {
        const lateness = random() * maxDelayMs;
        track(sleep(lateness).then(() => forward(req, body).catch(() => undefined)));
      }
      let reply: UpstreamReply;
      try {
        reply = await forward(req, body);
      } catch (error) {
        res
          .writeHead(502, { 'content-type': 'text/plain' })
          .end(`fault proxy: upstream failed: ${String(error)}`);
        return;
      }
      if (action === 'dropReply') {
        req.socket.destroy();
        return;
      }
      res.writeHead(reply.status, {
        ...endToEnd(reply.headers),
        'content-length': String(reply.body.length),
      });
      res.end(reply.body);
    })();
    track(work).catch(() => req.socket.destroy());
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    setFaults(next) {
      faults = next;
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      while (pending.size > 0) await Promise.allSettled([...pending]);
      agent.destroy();
    },
  };
}
