import { readFileSync } from 'node:fs';
import { sleep } from './stats.js';

function cpuTimes(): { idle: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    if (f.length < 5 || f.some((x) => !Number.isFinite(x))) return null;
    const idle = (f[3] ?? 0) + (f[4] ?? 0); // idle + iowait
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  } catch {
    return null;
  }
}

/**
 * Share of the machine's CPU time (0..1) used by everyone over the next `ms`, sampled while the bench
 * itself is idle: what the other processes on the machine take. NaN where /proc/stat is missing.
 */
export async function othersCpuShare(ms: number): Promise<number> {
  const a = cpuTimes();
  await sleep(ms);
  const b = cpuTimes();
  if (!a || !b || b.total === a.total) return Number.NaN;
  return 1 - (b.idle - a.idle) / (b.total - a.total);
}
