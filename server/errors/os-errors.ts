import { mkdir } from 'node:fs/promises';
import type { Code } from '../../common/codes.js';
import { RpcError } from '../../common/rpc-error.js';

/** errno → (code, reason, message); the message never names a server path. */
const errnoTable: Record<string, readonly [Code, string, string]> = {
  ENOENT: ['not_found', 'no_such_file', 'no such file or directory'],
  EEXIST: ['already_exists', 'file_exists', 'file already exists'],
  ENOTEMPTY: ['failed_precondition', 'directory_not_empty', 'directory not empty'],
  EACCES: ['permission_denied', 'access_denied', 'permission denied'],
  EPERM: ['permission_denied', 'operation_not_permitted', 'operation not permitted'],
  EROFS: ['permission_denied', 'read_only_file_system', 'read-only file system'],
  ENOTDIR: ['failed_precondition', 'not_a_directory', 'not a directory'],
  EISDIR: ['failed_precondition', 'is_a_directory', 'is a directory'],
  ELOOP: ['permission_denied', 'path_outside_root', 'symbolic link not followed'],
  ENAMETOOLONG: ['invalid_argument', 'name_too_long', 'file name too long'],
  EINVAL: ['invalid_argument', 'invalid_operation', 'invalid argument'],
  ENOSPC: ['resource_exhausted', 'no_space', 'no space left on device'],
  EDQUOT: ['resource_exhausted', 'quota_exceeded', 'disk quota exceeded'],
  EMFILE: ['resource_exhausted', 'too_many_open_files', 'too many open files'],
  ENFILE: ['resource_exhausted', 'too_many_open_files', 'too many open files in system'],
  EFBIG: ['out_of_range', 'file_too_large', 'file too large'],
  EBADF: ['failed_precondition', 'bad_descriptor', 'handle not usable for this operation'],
  EIO: ['data_loss', 'io_error', 'input/output error'],
  EBUSY: ['unavailable', 'resource_busy', 'resource busy'],
  EAGAIN: ['unavailable', 'try_again', 'resource temporarily unavailable'],
  EXDEV: ['failed_precondition', 'cross_device', 'cross-device operation'],
};

/** A path that names a FIFO, socket or device: handles are for regular files only. */
export function notRegularFile(displayPath: string): RpcError {
  return new RpcError({
    code: 'failed_precondition',
    message: `not a regular file: ${displayPath}`,
    details: { reason: 'not_a_regular_file', field: 'path' },
  });
}

/** The errno string of an OS error, if it is one. */
export function errnoOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('E') ? code : undefined;
}

/**
 * Turns an OS error into an RpcError. `displayPath` is the client's own path,
 * the only path a message may contain; `field` names the request's field the
 * error is about (`path` when the call names the file by path), as a
 * validation error does.
 */
export function fromOsError(error: unknown, displayPath?: string, field?: string): RpcError {
  const errno = errnoOf(error);
  const entry = errno === undefined ? undefined : errnoTable[errno];
  if (!entry) return RpcError.from(error);
  const [code, reason, text] = entry;
  return new RpcError({
    code,
    message: displayPath === undefined ? text : `${text}: ${displayPath}`,
    details: {
      reason,
      ...(field === undefined ? {} : { field }),
      errno: errno as string,
      ...(displayPath === undefined ? {} : { path: displayPath }),
    },
    ...(code === 'resource_exhausted' || code === 'unavailable' ? { retryAfterSeconds: 1 } : {}),
    cause: error,
  });
}

/**
 * `mkdir -p` of a folder the server needs to start (`what`: "the served
 * root", "the state directory"), failing with a message that names it and
 * says why, not the OS's own ("EEXIST: file already exists, mkdir 'afile'"
 * for a root that is a file).
 */
export async function ensureFolder(dir: string, what: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    const code = errnoOf(error);
    const why =
      code === 'EEXIST' || code === 'ENOTDIR'
        ? 'is a file (or lies under one), not a folder'
        : code === 'EROFS'
          ? 'is on a read-only file system'
          : code === 'EACCES' || code === 'EPERM'
            ? 'cannot be created: permission denied'
            : `cannot be created (${(error as Error).message})`;
    throw new Error(`${what} ${dir} ${why}`, { cause: error });
  }
}
