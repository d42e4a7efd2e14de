import { readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Stops every resident embedded server (`breeze server run`) whose record lies under the temp
 * directory, a few levels down (`<tmp>/breeze-…/[config/]server/resident.json`): tests start them
 * through the CLI and CI must not accumulate processes or sockets. Only processes whose command
 * line is `… breeze.js server run …` are signalled.
 */
export function stopStrayResidentServers(root = tmpdir(), depth = 4): number {
  let stopped = 0;
  const visit = (dir: string, level: number) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    if (names.includes('resident.json')) stopped += stopFrom(join(dir, 'resident.json'));
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

function stopFrom(record: string): number {
  try {
    const { pid } = JSON.parse(readFileSync(record, 'utf8')) as { pid?: unknown };
    if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return 0;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (!cmdline.some((a) => a.endsWith('breeze.js')) || !cmdline.includes('server')) return 0;
    process.kill(pid, 'SIGTERM');
    return 1;
  } catch {
    return 0;
  }
}
