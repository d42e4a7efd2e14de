const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** The forms `parseDuration` accepts, for messages. */
export const DURATION_FORMS = '0, 90s, 15m, 24h or 30d';

/**
 * Parses `0`, `90s`, `15m`, `24h`, `30d` into seconds. A bare number other than `0` is refused:
 * `--expires-in 30` must not silently mean 30 seconds when 30 days was meant.
 */
export function parseDuration(text: string): number {
  const m = /^\s*(\d{1,9})\s*([smhd]?)\s*$/.exec(text);
  if (!m) throw new RangeError(`Invalid duration "${text}": use ${DURATION_FORMS}.`);
  const n = Number(m[1]);
  if (!m[2] && n !== 0) {
    throw new RangeError(
      `Duration "${text.trim()}" has no unit: write ${n}s, ${n}m, ${n}h or ${n}d (accepted: ${DURATION_FORMS}).`,
    );
  }
  return n * (UNITS[m[2] || 's'] ?? 1);
}

export function formatDuration(seconds: number): string {
  if (seconds % 86400 === 0 && seconds > 0) return `${seconds / 86400}d`;
  if (seconds % 3600 === 0 && seconds > 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0 && seconds > 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}
