import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { RpcError } from '../../common/rpc-error.js';
import { Sandbox } from '../sandbox/sandbox.js';

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

/** Bearer tokens → principals; without a tokens file every caller is `anonymous` with the whole root. */
export class Principals {
  private constructor(
    private readonly byToken: Map<string, Principal> | undefined,
    private readonly anonymous: Principal,
  ) {}

  /** Loads the tokens file (if any) and prepares each principal's sandbox. */
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
    for (const [token, value] of Object.entries(raw as Record<string, TokenEntry>)) {
      if (typeof value?.principal !== 'string' || value.principal === '') {
        throw new Error(`tokens file ${tokensFile}: entry for a token lacks "principal"`);
      }
      let sandbox = root;
      if (value.root !== undefined) {
        const sub = root.segments(value.root);
        sandbox = await Sandbox.create(path.join(root.realRoot, ...sub));
      }
      byToken.set(token, { name: value.principal, readOnly: value.readOnly === true, sandbox });
    }
    return new Principals(byToken, anonymous);
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
