import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { RpcError } from '../../common/rpc-error.js';
import { ensureFolder, errnoOf, fromOsError } from '../errors/os-errors.js';
import { hasLoneSurrogate, notUnicode } from '../rpc/unicode.js';
import { probePinning } from './pinned-folder.js';

/** A client path resolved inside the root. */
export interface ResolvedPath {
  /** Absolute host path (never shown to clients). */
  readonly abs: string;
  /** The client's path, normalised (`/notes/a.txt`): the only form messages use. */
  readonly display: string;
  /** True for the root itself. */
  readonly isRoot: boolean;
}

/** The refusal every escape attempt gets. */
export function outsideRoot(display: string): RpcError {
  return new RpcError({
    code: 'permission_denied',
    message: `path leaves the served root: ${display}`,
    details: { reason: 'path_outside_root', field: 'path' },
  });
}

/**
 * Confines client paths to the served root (contract section 9): `..` may not
 * climb above it, NUL bytes are refused, and symbolic links are followed only
 * when their target stays inside. The final component is checked with lstat
 * and opened by callers with O_NOFOLLOW, so a link swapped in later is not
 * followed; callers act on it inside its parent folder pinned at the resolved
 * real path (pinned-folder.ts), so neither is a folder on the way swapped later.
 */
export class Sandbox {
  private constructor(readonly realRoot: string) {}

  /**
   * Creates the root folder if needed and resolves its real path; checks
   * whether folders can be pinned under it (pinned-folder.ts).
   */
  static async create(root: string): Promise<Sandbox> {
    await ensureFolder(root, 'the served root');
    const realRoot = await fsp.realpath(root);
    probePinning(realRoot);
    return new Sandbox(realRoot);
  }

  /**
   * The sandbox of a folder below this root (a confined principal's), made
   * folder by folder where missing. Each folder is resolved before the next is
   * made in it, so a symbolic link on the way that leads out of this root (or
   * nowhere) is refused before anything is made through it: `mkdir -p` would
   * follow it and make the rest outside. Links that stay inside are followed.
   */
  async within(segs: readonly string[]): Promise<Sandbox> {
    const display = `/${segs.join('/')}`;
    let real = this.realRoot;
    for (const seg of segs) {
      const next = path.join(real, seg);
      await fsp.mkdir(next).catch((error: unknown) => {
        if (errnoOf(error) !== 'EEXIST') throw fromOsError(error, display);
      });
      real = await fsp.realpath(next).catch((error: unknown) => {
        // A dangling link: where it would lead cannot be vouched for.
        throw errnoOf(error) === 'ENOENT' ? outsideRoot(display) : fromOsError(error, display);
      });
      if (!this.contains(real)) throw outsideRoot(display);
    }
    if (!(await fsp.stat(real)).isDirectory()) throw new Error(`not a folder: ${display}`);
    return new Sandbox(real);
  }

  /** Splits a client path into segments inside the root, or throws path_outside_root. */
  segments(clientPath: string): string[] {
    const shown = clientPath.length > 200 ? `${clientPath.slice(0, 200)}…` : clientPath;
    if (clientPath.includes('\0')) throw outsideRoot(shown.replace(/\0/g, '\\0'));
    if (hasLoneSurrogate(clientPath)) throw notUnicode('path');
    const out: string[] = [];
    for (const part of clientPath.split('/')) {
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (out.length === 0) throw outsideRoot(shown);
        out.pop();
      } else {
        out.push(part);
      }
    }
    return out;
  }

  /** Whether an absolute real path is the root or below it. */
  contains(realPath: string): boolean {
    return realPath === this.realRoot || realPath.startsWith(this.realRoot + path.sep);
  }

  /**
   * Resolves a client path. The parent folder's real path must lie inside the
   * root; with `followFinal`, a final symbolic link is followed only to a
   * target inside the root (otherwise the link itself is named).
   */
  async resolve(clientPath: string, followFinal = true): Promise<ResolvedPath> {
    const segs = this.segments(clientPath);
    const display = `/${segs.join('/')}`;
    if (segs.length === 0) return { abs: await this.realSelf(display), display, isRoot: true };
    const name = segs[segs.length - 1] as string;
    const parent = await this.realParent(segs.slice(0, -1), display);
    const abs = path.join(parent, name);
    if (followFinal) {
      const target = await this.followLink(abs, display);
      if (target !== undefined) return { abs: target, display, isRoot: target === this.realRoot };
    }
    return { abs, display, isRoot: false };
  }

  /**
   * The root itself, checked like any other path: it must still resolve to
   * itself. A confined principal's root is a folder inside the served root,
   * which the host may replace with a link to elsewhere after start; its
   * calls on "/" would then reach that folder.
   */
  private async realSelf(display: string): Promise<string> {
    let real: string;
    try {
      real = await fsp.realpath(this.realRoot);
    } catch (error) {
      throw fromOsError(error, display, 'path');
    }
    if (real !== this.realRoot) throw outsideRoot(display);
    return real;
  }

  /** Resolves the real path of a folder given by segments; missing folders keep their lexical names. */
  private async realParent(segs: string[], display: string): Promise<string> {
    const lexical = path.join(this.realRoot, ...segs);
    let real: string;
    try {
      real = await fsp.realpath(lexical);
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT' && errnoOf(error) !== 'ENOTDIR')
        throw fromOsError(error, display, 'path');
      return this.realDeepest(segs, display);
    }
    if (!this.contains(real)) throw outsideRoot(display);
    return real;
  }

  /**
   * For a partly missing folder chain: the deepest existing ancestor must be inside, and the
   * first missing component must not be a dangling link (its target cannot be vouched for:
   * the kernel would follow it); the rest is appended.
   */
  private async realDeepest(segs: string[], display: string): Promise<string> {
    for (let i = segs.length - 1; i >= 0; i--) {
      let real: string;
      try {
        real = await fsp.realpath(path.join(this.realRoot, ...segs.slice(0, i)));
      } catch {
        continue;
      }
      if (!this.contains(real)) throw outsideRoot(display);
      const next = await fsp.lstat(path.join(real, segs[i] as string)).catch(() => undefined);
      if (next?.isSymbolicLink()) throw outsideRoot(display);
      return path.join(real, ...segs.slice(i));
    }
    return path.join(this.realRoot, ...segs);
  }

  /** If `abs` is a symbolic link, its real target (which must be inside); else undefined. */
  private async followLink(abs: string, display: string): Promise<string | undefined> {
    let isLink = false;
    try {
      isLink = (await fsp.lstat(abs)).isSymbolicLink();
    } catch {
      return undefined;
    }
    if (!isLink) return undefined;
    let target: string;
    try {
      target = await fsp.realpath(abs);
    } catch (error) {
      // A dangling link: refuse it rather than create something at its target.
      if (errnoOf(error) === 'ENOENT') throw outsideRoot(display);
      throw fromOsError(error, display, 'path');
    }
    if (!this.contains(target)) throw outsideRoot(display);
    return target;
  }
}
