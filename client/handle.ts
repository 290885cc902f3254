/**
 * `openHandle`: a RemoteOpen whose result closes itself, for `await using`.
 * Prints go through the client, so they are numbered and exactly-once too.
 */
import { RpcError } from '../common/rpc-error.js';
import type {
  Encoding,
  FilesClient,
  Lease,
  RemoteOpenRequest,
  RemotePrintResponse,
  RemoteReadRequest,
  RemoteReadResponse,
} from '../generated/index.js';
import type { CallOptions } from './options.js';

/** An open remote file: its handle, its lease, and calls bound to it. */
export interface RemoteHandle extends AsyncDisposable {
  readonly handle: string;
  readonly lease: Lease;
  /** Writes `data` (numbered, so concurrent prints land in call order). */
  print(data: string, options?: CallOptions & { encoding?: Encoding }): Promise<RemotePrintResponse>;
  /** Reads through the handle (at `offset` when given, else at the handle's position). */
  read(request?: Omit<RemoteReadRequest, 'handle'>, options?: CallOptions): Promise<RemoteReadResponse>;
  /** Closes the handle; later calls are no-ops. A handle already gone (lease ended) counts as closed. */
  close(options?: CallOptions): Promise<void>;
}

/**
 * Opens a remote file and returns a handle object that `await using` closes:
 * `await using file = await openHandle(client, { path: 'a.txt', mode: 'append', create: true })`.
 */
export async function openHandle(
  client: { readonly files: FilesClient<CallOptions> },
  request: RemoteOpenRequest,
  options?: CallOptions,
): Promise<RemoteHandle> {
  const { handle, lease } = await client.files.remoteOpen(request, options);
  let closing: Promise<void> | undefined;
  const close = (closeOptions?: CallOptions): Promise<void> => {
    closing ??= client.files.remoteClose({ handle }, closeOptions).then(
      () => undefined,
      (error: unknown) => {
        // Gone already (lease expired or revoked, or closed by its lease): nothing left to close.
        if (
          error instanceof RpcError &&
          (error.code === 'not_found' || error.reason === 'lease_expired' || error.reason === 'lease_revoked')
        )
          return;
        throw error;
      },
    );
    return closing;
  };
  return {
    handle,
    lease,
    print: (data, printOptions) => {
      const { encoding, ...callOptions } = printOptions ?? {};
      // Literals and rest, no object spread on a per-call path: see PrintSequencer.
      return client.files.remotePrint(encoding ? { handle, data, encoding } : { handle, data }, callOptions);
    },
    read: (readRequest, readOptions) =>
      client.files.remoteRead(Object.assign({}, readRequest, { handle }), readOptions),
    close,
    [Symbol.asyncDispose]: () => close(),
  };
}
