import { isUtf8 } from 'node:buffer';
import { RpcError } from '../../common/rpc-error.js';

/**
 * Strings that cannot be encoded as UTF-8: a lone UTF-16 surrogate (JSON lets
 * a client send one as an escape, "\ud800"). Encoded, it became U+FFFD, so
 * that different names named one file and printed data changed; such a field
 * is refused instead.
 */

/** String.prototype.isWellFormed (ES2024; in Node 20 already, but not in the ES2023 lib the build targets). */
type WellFormed = { isWellFormed(): boolean };

/** Whether `text` holds a lone surrogate. One-byte strings (most) answer at once. */
export function hasLoneSurrogate(text: string): boolean {
  return !(text as unknown as WellFormed).isWellFormed();
}

/** invalid_argument for a field holding a lone surrogate. */
export function notUnicode(field: string): RpcError {
  return new RpcError({
    code: 'invalid_argument',
    message: `${field} holds a lone UTF-16 surrogate, which is not Unicode text`,
    details: { reason: 'invalid_unicode', field },
  });
}

/** A request body as text, or undefined when its bytes are not UTF-8 (the body parsers of both transports). */
export function utf8Text(body: Buffer): string | undefined {
  return isUtf8(body) ? body.toString('utf8') : undefined;
}

/** invalid_argument for a request body that is not UTF-8. */
export function notUtf8(): RpcError {
  return new RpcError({
    code: 'invalid_argument',
    message: 'request body is not valid UTF-8',
    details: { reason: 'malformed_json' },
  });
}
