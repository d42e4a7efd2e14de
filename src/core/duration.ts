const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Parses `0`, `90s`, `15m`, `24h`, `30d` (also a bare number of seconds) into seconds. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d{1,9})\s*([smhd]?)\s*$/.exec(text);
  if (!m) throw new RangeError(`Invalid duration "${text}": use e.g. 0, 90s, 15m, 24h or 30d.`);
  const n = Number(m[1]);
  return n * (UNITS[m[2] || 's'] ?? 1);
}

export function formatDuration(seconds: number): string {
  if (seconds % 86400 === 0 && seconds > 0) return `${seconds / 86400}d`;
  if (seconds % 3600 === 0 && seconds > 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0 && seconds > 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}
