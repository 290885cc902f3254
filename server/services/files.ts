import { RpcError } from '../../common/rpc-error.js';
import type { FilesImplementation } from '../../generated/index.js';
import type { Handle } from '../handles/handle-table.js';
import type { CallContext } from '../rpc/context.js';
import { hasLoneSurrogate, notUnicode } from '../rpc/unicode.js';
import { assertWritable } from './access.js';
import type { FileState } from './file-state.js';

const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;

function invalid(field: string, reason: string, message: string): RpcError {
  return new RpcError({ code: 'invalid_argument', message, details: { reason, field } });
}

/** Decodes `data` as the request says; malformed base64 is refused, never silently trimmed. */
function decodeData(data: string, encoding: string | undefined): Buffer {
  if (encoding !== 'base64') {
    if (hasLoneSurrogate(data)) throw notUnicode('data');
    return Buffer.from(data, 'utf8');
  }
  if (!base64.test(data)) throw invalid('data', 'invalid_base64', 'data is not valid base64');
  return Buffer.from(data, 'base64');
}

function sequenceError(handle: Handle, seq: number): RpcError {
  const expected = handle.lastSeq + 1;
  const gap = seq > expected;
  return new RpcError({
    code: 'failed_precondition',
    message: gap
      ? `seq ${seq} arrived before seq ${expected}: retry once the earlier prints are applied`
      : `seq ${seq} was already applied (last applied: ${handle.lastSeq})`,
    details: {
      reason: gap ? 'sequence_gap' : 'stale_sequence',
      field: 'seq',
      expected,
      lastApplied: handle.lastSeq,
    },
    ...(gap ? { retryAfterSeconds: 0 } : {}),
  });
}

/** The Files service: leased handles over files in the caller's sandbox. */
export function filesService(state: FileState): FilesImplementation<CallContext> {
  const { leases, handles } = state;

  /** Renews the handle's lease (every successful call on a handle does) and reports its time left. */
  const touch = (handle: Handle, ctx: CallContext): void => {
    leases.renew(handle.lease);
    ctx.leaseRemainingMs = handle.lease.ttlMs;
  };

  return {
    async remoteOpen(request, ctx) {
      const { mode } = request;
      if (mode !== 'read') assertWritable(ctx);
      if (mode === 'read' && request.create)
        throw invalid('create', 'create_needs_write', 'create needs mode write or append');
      if (request.exclusive && !request.create)
        throw invalid('exclusive', 'exclusive_needs_create', 'exclusive needs create');
      if (request.truncate && mode !== 'write')
        throw invalid('truncate', 'truncate_needs_write', 'truncate needs mode write');
      const target = await ctx.sandbox.resolve(request.path);
      if (target.isRoot) {
        throw new RpcError({
          code: 'failed_precondition',
          message: 'is a directory: /',
          details: { reason: 'is_a_directory', field: 'path' },
        });
      }
      const shared = request.leaseId !== undefined;
      const lease = shared
        ? leases.get(ctx.principal, request.leaseId as string)
        : leases.grant(ctx.principal, request.leaseTtlMs, true);
      let handle: Handle;
      try {
        handle = await handles.open(
          ctx.principal,
          {
            abs: target.abs,
            display: target.display,
            mode,
            create: request.create === true,
            exclusive: request.exclusive === true,
            truncate: request.truncate === true,
          },
          lease,
        );
      } catch (error) {
        if (!shared) leases.discard(lease);
        throw error;
      }
      touch(handle, ctx);
      return { handle: handle.id, lease: leases.view(lease) };
    },

    remotePrint(request, ctx) {
      const handle = handles.get(ctx.principal, request.handle);
      const key = ctx.idempotencyKey;
      if (handles.log.inDoubtCount > 0 && key !== undefined) {
        // After a crash: this print was logged (and redone) but never acknowledged; answer, do not write again.
        const data = decodeData(request.data, request.encoding);
        const done = handles.log.takeInDoubt(ctx.principal, key, handle.id, request.seq, data);
        if (done !== undefined) {
          touch(handle, ctx);
          return done;
        }
      }
      const seq = request.seq ?? handle.lastSeq + 1;
      if (seq !== handle.lastSeq + 1) throw sequenceError(handle, seq);
      const bytes = decodeData(request.data, request.encoding);
      const printed = handles.print(handle, bytes, seq, ctx);
      ctx.settlesThisTurn = true;
      // Numbered now, so that the next print of this turn may follow it; a failed write takes it back.
      handle.lastSeq = seq;
      touch(handle, ctx);
      return printed;
    },

    async remoteRead(request, ctx) {
      const handle = handles.get(ctx.principal, request.handle);
      const encoding = request.encoding ?? 'utf8';
      const { bytes, offset, eof } = await handles.read(handle, request.offset, request.length ?? 65_536);
      touch(handle, ctx);
      return { data: bytes.toString(encoding), encoding, offset, eof };
    },

    remoteClose(request, ctx) {
      const handle = handles.get(ctx.principal, request.handle);
      handles.close(handle);
      if (handle.lease.solo) {
        // The lease RemoteOpen made for this handle alone ends with it.
        leases.discard(handle.lease);
        ctx.leaseRemainingMs = 0;
      } else {
        touch(handle, ctx);
      }
      return {};
    },
  };
}
