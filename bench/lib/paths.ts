import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest ancestor with bin/breeze.js (the bench runs from .bench-build/). */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'bin', 'breeze.js')) && existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('bench: cannot find the repository root (bin/breeze.js)');
    dir = up;
  }
}

export const ROOT = findRoot();
export const BIN = join(ROOT, 'bin', 'breeze.js');
/** Compiled bench output and results.json. */
export const BUILD_DIR = join(ROOT, '.bench-build');
