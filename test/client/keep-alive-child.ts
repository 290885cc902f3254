/**
 * Child process of the keep-alive test: opens a handle (so the client keeps
 * a lease alive) and returns without closing the client. The process must
 * still exit on its own: keep-alive timers and idle sockets are unref'd.
 */
import { createClient } from '../../client/index.js';

const client = createClient({ baseUrl: process.env.LEASEGATE_URL });
const { handle } = await client.files.remoteOpen({ path: 'child.txt', mode: 'append', create: true });
console.log('opened', handle, client.leaseIds.length);
