import { RpcError } from '../../common/rpc-error.js';
import type { CallContext } from '../rpc/context.js';

/** Refuses a change of the file tree by a read-only principal. */
export function assertWritable(ctx: CallContext): void {
  if (ctx.readOnly) {
    throw new RpcError({
      code: 'permission_denied',
      message: 'this token is read-only',
      details: { reason: 'read_only_principal' },
    });
  }
}
