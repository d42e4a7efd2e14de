import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Command } from 'commander';
import { UsageError } from '../errors.js';
import { LINK_FILE } from '../link-file.js';
import { createOutput } from '../ui/output.js';
import type { CommandHost } from './host.js';

/**
 * `breeze unlink`: removes `.breeze.json` from the directory. Works without reading the file (a
 * broken one must be removable). When the link that applies sits further up, says so.
 */
export function runUnlink(opts: { dir?: string } = {}): { removed: string | null; applies: string | null } {
  const dir = resolve(opts.dir ?? process.cwd());
  const path = join(dir, LINK_FILE);
  if (existsSync(path)) {
    if (!lstatSync(path).isFile()) throw new UsageError(`${path} is not a regular file; it is left alone.`);
    unlinkSync(path);
    return { removed: path, applies: findAbove(dirname(dir)) };
  }
  return { removed: null, applies: findAbove(dirname(dir)) };
}

function findAbove(start: string): string | null {
  let dir = start;
  for (;;) {
    const p = join(dir, LINK_FILE);
    if (existsSync(p)) return p;
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

export function createCommand(_host: CommandHost): Command {
  return new Command('unlink')
    .description('remove the .breeze.json of this directory (breeze link)')
    .action(async (_o, cmd: Command) => {
      const out = createOutput();
      const r = runUnlink();
      if (cmd.optsWithGlobals().json) {
        out.json(r);
        return;
      }
      if (r.removed) out.success(`Removed ${r.removed}.`);
      else out.info(`No ${LINK_FILE} in this directory; nothing to remove.`);
      if (r.applies)
        out.info(`${r.applies} still applies here (remove it with "breeze unlink" in its directory).`);
    });
}
