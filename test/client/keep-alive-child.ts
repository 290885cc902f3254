/**
 * Child process of the keep-alive tests. By default it opens a handle (so the
 * client keeps a lease alive) and returns without closing the client: the
 * process must still exit on its own, as keep-alive timers and idle sockets
 * are unref'd. With LEASEGATE_LEASE_TTL_MS it opens the handle with that TTL,
 * says `opened`, and reports the first leaseLost as a JSON line (or `none`
 * after LEASEGATE_WAIT_MS), for a parent that pauses it with SIGSTOP.
 */
import { createClient } from '../../client/index.js';

const client = createClient({ baseUrl: process.env.LEASEGATE_URL });
const ttl = process.env.LEASEGATE_LEASE_TTL_MS;
if (ttl === undefined) {
  const { handle } = await client.files.remoteOpen({ path: 'child.txt', mode: 'append', create: true });
  console.log('opened', handle, client.leaseIds.length);
} else {
  const waitMs = Number(process.env.LEASEGATE_WAIT_MS ?? 10_000);
  let timer: NodeJS.Timeout | undefined;
  const report = new Promise<string>((resolve) => {
    client.on('leaseLost', (leaseId, error) =>
      resolve(JSON.stringify({ leaseId, code: error.code, reason: error.reason, message: error.message })),
    );
    timer = setTimeout(() => resolve('none'), waitMs);
  });
  const { lease } = await client.files.remoteOpen({
    path: 'paused.txt',
    mode: 'append',
    create: true,
    leaseTtlMs: Number(ttl),
  });
  console.log('opened', lease.leaseId);
  console.log(await report);
  clearTimeout(timer);
  await client.close();
}
