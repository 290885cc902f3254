import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest folder above this file with leasegate's package.json (works from dist/ and under tsx). */
export function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'leasegate')
      return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the leasegate repository root above the bench script');
    dir = up;
  }
}
