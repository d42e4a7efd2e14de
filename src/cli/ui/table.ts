import { themeFor } from './theme.js';

/**
 * A plain table for a terminal: bold header, padded columns, no borders (copy-paste friendly).
 * `statusColumn`: a column of key statuses, coloured after padding so alignment holds.
 */
export function renderTable(
  headers: string[],
  rows: string[][],
  opts: { statusColumn?: number } = {},
): string {
  const c = themeFor('stdout');
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (cells: string[], colour: boolean) =>
    cells
      .map((cell, i) => {
        const padded = i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0);
        return colour && i === opts.statusColumn ? padded.replace(cell, statusText(cell)) : padded;
      })
      .join('  ')
      .trimEnd();
  return [c.bold(fmt(headers, false)), ...rows.map((r) => fmt(r, true))].join('\n');
}

/** Colours a key status word. */
export function statusText(status: string): string {
  const c = themeFor('stdout');
  if (status === 'active') return c.green(status);
  if (status === 'expiring') return c.yellow(status);
  return c.red(status);
}
