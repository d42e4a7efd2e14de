import { readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, sep } from 'node:path';

/**
 * Stops every resident embedded server (`breeze server run`) whose record lies under the temp
 * directory, a few levels down (`<tmp>/breeze-…/[config/]server/resident.json`): tests start them
 * through the CLI and CI must not accumulate processes or sockets. Only processes whose command
 * line is `… breeze.js server run …` are signalled, and only when that breeze.js is this checkout's
 * (`checkout`) or a copy a test installed under a `breeze*` temp dir: a suite running in another
 * checkout at the same time keeps its servers.
 */
export function stopStrayResidentServers(root = tmpdir(), depth = 4, checkout = process.cwd()): number {
  const ours = (bin: string) =>
    bin === resolve(checkout, 'bin', 'breeze.js') || isUnderBreezeTemp(bin, resolve(root));
  let stopped = 0;
  const visit = (dir: string, level: number) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    if (names.includes('resident.json')) stopped += stopFrom(join(dir, 'resident.json'), ours);
    if (level >= depth) return;
    for (const name of names) {
      if (level === 0 && !name.startsWith('breeze')) continue; // the test suites' temp dirs only
      const p = join(dir, name);
      try {
        if (statSync(p).isDirectory()) visit(p, level + 1);
      } catch {}
    }
  };
  visit(root, 0);
  return stopped;
}

/** `<root>/breeze…/…`: a path inside one of the test suites' temp dirs */
function isUnderBreezeTemp(path: string, root: string): boolean {
  const prefix = root.endsWith(sep) ? root : root + sep;
  return (
    path.startsWith(prefix) &&
    path.slice(prefix.length).startsWith('breeze') &&
    path.slice(prefix.length).includes(sep)
  );
}

function stopFrom(record: string, ours: (bin: string) => boolean): number {
  try {
    const { pid } = JSON.parse(readFileSync(record, 'utf8')) as { pid?: unknown };
    if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return 0;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const bin = cmdline.find((a) => a.endsWith('breeze.js'));
    if (bin === undefined || !ours(resolve(bin)) || !cmdline.includes('server')) return 0;
    process.kill(pid, 'SIGTERM');
    return 1;
  } catch {
    return 0;
  }
}
