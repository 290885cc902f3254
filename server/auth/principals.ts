import { readFile } from 'node:fs/promises';
import { RpcError } from '../../common/rpc-error.js';
import type { Sandbox } from '../sandbox/sandbox.js';

/** Who a caller is, and what they may reach. */
export interface Principal {
  readonly name: string;
  readonly readOnly: boolean;
  readonly sandbox: Sandbox;
}

/** One entry of the tokens file. */
export interface TokenEntry {
  principal: string;
  readOnly?: boolean;
  root?: string;
}

/**
 * The fields an entry may hold. Anything else is refused: a misspelt
 * `readonly` would otherwise be ignored and leave the token with write access.
 */
const entryFields: readonly string[] = ['principal', 'readOnly', 'root'];

/** How JSON shows a value in a message: its type, and the value itself when short. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  const type = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
  return text.length > 40 ? type : `${type} (${text})`;
}

/**
 * How messages name an entry of the tokens file: by its position and
 * principal, never by its token (a secret, which would end up in logs).
 */
function entryName(position: number, principal?: string): string {
  return `entry ${position}${principal === undefined ? '' : ` (principal "${principal}")`}`;
}

/** Checks one entry of the tokens file field by field. */
function checkEntry(value: unknown, position: number): TokenEntry {
  const fail = (why: string, principal?: string): Error =>
    new Error(`${entryName(position, principal)}: ${why}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw fail(`must be an object {"principal": "..."}, not ${shown(value)}`);
  }
  const entry = value as Record<string, unknown>;
  const { principal, readOnly, root } = entry;
  if (principal === undefined) throw fail('lacks "principal" (a non-empty string)');
  if (typeof principal !== 'string' || principal === '') {
    throw fail(`"principal" must be a non-empty string, not ${shown(principal)}`);
  }
  for (const field of Object.keys(entry)) {
    if (!entryFields.includes(field)) {
      throw fail(`unknown field "${field}" (an entry holds only ${entryFields.join(', ')})`, principal);
    }
  }
  if (readOnly !== undefined && typeof readOnly !== 'boolean') {
    throw fail(`"readOnly" must be true or false, not ${shown(readOnly)}`, principal);
  }
  if (root !== undefined && typeof root !== 'string') {
    throw fail(`"root" must be a string (a folder inside the served root), not ${shown(root)}`, principal);
  }
  return {
    principal,
    ...(readOnly === undefined ? {} : { readOnly }),
    ...(root === undefined ? {} : { root }),
  };
}

/** An entry and where it stands in the tokens file. */
interface PlacedEntry {
  readonly position: number;
  readonly entry: TokenEntry;
}

/** An error about an entry's `root`, naming the entry. */
function rootError({ position, entry }: PlacedEntry, error: unknown): Error {
  const why = (error as Error).message;
  return new Error(`${entryName(position, entry.principal)}: "root" ${JSON.stringify(entry.root)}: ${why}`);
}

/** The folder an entry's `root` names, as segments below the served root ([] for the whole root). */
function rootSegments(root: Sandbox, placed: PlacedEntry): string[] {
  try {
    return root.segments(placed.entry.root ?? '');
  } catch (error) {
    throw rootError(placed, error);
  }
}

/** The sandbox of an entry: the served root, or the folder its `root` names inside it (made if missing). */
async function confinedSandbox(root: Sandbox, placed: PlacedEntry): Promise<Sandbox> {
  if (placed.entry.root === undefined) return root;
  const segments = rootSegments(root, placed);
  try {
    return await root.within(segments);
  } catch (error) {
    throw rootError(placed, error);
  }
}

/**
 * Refuses a second token of a principal unless it has the first one's
 * readOnly and root. Handles, leases and idempotency records belong to the
 * principal's name, so a read-only or confined token would otherwise reach the
 * handles a full-access token of the same name opened (and read through them
 * outside its folder). Roots are compared as the segments they name.
 */
function sameReach(root: Sandbox, first: PlacedEntry, next: PlacedEntry): void {
  const reach = (placed: PlacedEntry) => ({
    readOnly: placed.entry.readOnly === true,
    root: `/${rootSegments(root, placed).join('/')}`,
  });
  const [a, b] = [reach(first), reach(next)];
  const field = a.readOnly !== b.readOnly ? 'readOnly' : a.root !== b.root ? 'root' : undefined;
  if (field === undefined) return;
  throw new Error(
    `entries ${first.position} and ${next.position} both name principal "${next.entry.principal}" but differ in ` +
      `"${field}" (${JSON.stringify(a[field])} and ${JSON.stringify(b[field])}): handles, leases and ` +
      'idempotency keys belong to the principal, so all its tokens need the same readOnly and root ' +
      '(give the other token a principal of its own)',
  );
}

/** Bearer tokens → principals; without a tokens file every caller is `anonymous` with the whole root. */
export class Principals {
  private constructor(
    private readonly byToken: Map<string, Principal> | undefined,
    private readonly anonymous: Principal,
  ) {}

  /**
   * Loads the tokens file (if any) and prepares each principal's sandbox. A
   * malformed entry stops the server with a message naming the entry by its
   * position (as JavaScript orders the keys: a token that is a plain number
   * comes first) and its principal, and the field.
   */
  static async load(root: Sandbox, tokensFile: string | undefined): Promise<Principals> {
    const anonymous: Principal = { name: 'anonymous', readOnly: false, sandbox: root };
    if (tokensFile === undefined) return new Principals(undefined, anonymous);
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(tokensFile, 'utf8'));
    } catch (error) {
      throw new Error(`cannot read tokens file ${tokensFile}: ${(error as Error).message}`);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw new Error(`tokens file ${tokensFile} must hold an object {"<token>": {"principal": "..."}}`);
    }
    const byToken = new Map<string, Principal>();
    const byName = new Map<string, PlacedEntry & { principal: Principal }>();
    let position = 0;
    for (const [token, value] of Object.entries(raw)) {
      position++;
      try {
        const entry = checkEntry(value, position);
        const first = byName.get(entry.principal);
        if (first !== undefined) {
          sameReach(root, first, { position, entry });
          byToken.set(token, first.principal);
          continue;
        }
        const sandbox = await confinedSandbox(root, { position, entry });
        const principal = { name: entry.principal, readOnly: entry.readOnly === true, sandbox };
        byName.set(entry.principal, { position, entry, principal });
        byToken.set(token, principal);
      } catch (error) {
        throw new Error(`tokens file ${tokensFile}: ${(error as Error).message}`);
      }
    }
    return new Principals(byToken, anonymous);
  }

  /** Whether requests must carry a token (a tokens file was given). */
  get authenticates(): boolean {
    return this.byToken !== undefined;
  }

  /** The principal of an Authorization header value, or unauthenticated. */
  resolve(authorization: string | undefined): Principal {
    if (this.byToken === undefined) return this.anonymous;
    const match = authorization === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    const principal = match?.[1] === undefined ? undefined : this.byToken.get(match[1]);
    if (principal === undefined) {
      throw new RpcError({
        code: 'unauthenticated',
        message: authorization === undefined ? 'missing Authorization: Bearer token' : 'unknown bearer token',
        details: { reason: authorization === undefined ? 'missing_token' : 'invalid_token' },
      });
    }
    return principal;
  }
}
