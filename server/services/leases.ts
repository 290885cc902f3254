import type { LeasesImplementation } from '../../generated/index.js';
import type { CallContext } from '../rpc/context.js';
import type { FileState } from './file-state.js';

/** The Leases service: grant, renew, inspect and revoke leases that handles share. */
export function leasesService(state: FileState): LeasesImplementation<CallContext> {
  const { leases } = state;
  return {
    grant(request, ctx) {
      const lease = leases.grant(ctx.principal, request.ttlMs);
      ctx.leaseRemainingMs = lease.ttlMs;
      return { lease: leases.view(lease) };
    },
    keepAlive(request, ctx) {
      const lease = leases.get(ctx.principal, request.leaseId);
      leases.renew(lease);
      ctx.leaseRemainingMs = lease.ttlMs;
      return { lease: leases.view(lease) };
    },
    timeToLive(request, ctx) {
      const lease = leases.get(ctx.principal, request.leaseId);
      const remainingMs = leases.remainingMs(lease);
      ctx.leaseRemainingMs = remainingMs;
      return { lease: leases.view(lease), remainingMs, handles: lease.memberIds() };
    },
    revoke(request, ctx) {
      leases.revoke(leases.get(ctx.principal, request.leaseId));
      ctx.leaseRemainingMs = 0;
      return {};
    },
  };
}
