import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { errnoOf } from '../errors/os-errors.js';
import { osError, type PinnedFolder, pinChild, pinFolder } from './pinned-folder.js';

/** Ignores ENOENT: an entry removed by someone else meanwhile is as good as removed. */
const unlessGone = (error: unknown): undefined => {
  if (errnoOf(error) !== 'ENOENT') throw error;
  return undefined;
};

/**
 * mkdir -p of `real` (a path the sandbox resolved below `realRoot`), folder
 * by folder from the root, each made and then pinned inside the folder
 * before it: a link met on the way (one swapped in since the check) is not
 * followed (ELOOP), so nothing is made outside the root. A file where the
 * last folder should be is EEXIST, as mkdir -p says.
 */
export async function makeFolders(realRoot: string, real: string): Promise<void> {
  const segs = path
    .relative(realRoot, real)
    .split(path.sep)
    .filter((seg) => seg !== '');
  let folder = await pinFolder(realRoot);
  try {
    for (const [i, seg] of segs.entries()) {
      await fsp.mkdir(folder.at(seg)).catch((error: unknown) => {
        if (errnoOf(error) !== 'EEXIST') throw error;
      });
      const next = await pinChild(folder, seg).catch((error: unknown) => {
        const last = i === segs.length - 1;
        throw last && errnoOf(error) === 'ENOTDIR' ? osError('EEXIST', 'a file is there') : error;
      });
      const done = folder;
      folder = next; // first: if closing `done` throws, `finally` closes `next`, not `done` again
      await done.close();
    }
  } finally {
    await folder.close();
  }
}

/**
 * rm -r of the folder `name` inside a pinned folder, level by level: each
 * folder is pinned (never through a link) before its entries are looked at
 * with lstat and removed, so a folder swapped for a link out of the root
 * while the tree is being removed stops the removal (ELOOP) instead of
 * emptying the link's target. Holds one descriptor per level of the tree.
 */
export async function removeTree(parent: PinnedFolder, name: string): Promise<void> {
  const folder = await pinChild(parent, name);
  try {
    for (const entry of await fsp.readdir(folder.self)) {
      const st = await fsp.lstat(folder.at(entry)).catch(unlessGone);
      if (st === undefined) continue;
      if (st.isDirectory()) await removeTree(folder, entry).catch(unlessGone);
      else await fsp.unlink(folder.at(entry)).catch(unlessGone);
    }
  } finally {
    await folder.close();
  }
  await fsp.rmdir(parent.at(name));
}
