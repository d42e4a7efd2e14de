import { clampText, MAX_CELL_LENGTH, type TrustedLine, terminalLine, trustedLine } from './terminal-text.js';
import { themeFor } from './theme.js';

/**
 * A plain table for a terminal: bold header, padded columns, no borders (copy-paste friendly).
 * Cells are escaped first (a key name from a server cannot hold a newline that would start a fake
 * row, nor a control sequence), then padded and coloured; the lines go to `out.data` as they are.
 * A cell is cut at MAX_CELL_LENGTH characters (`--json` has whole values): one megabyte-long name
 * from a server would otherwise pad every line of the table to its width.
 * `statusColumn`: a column of key statuses, coloured after padding so alignment holds.
 */
export function renderTable(
  headers: string[],
  rows: string[][],
  opts: { statusColumn?: number } = {},
): TrustedLine[] {
  const c = themeFor('stdout');
  const safe = rows.map((r) => r.map((cell) => terminalLine(clampText(cell ?? '', MAX_CELL_LENGTH))));
  const widths = headers.map((h, i) => Math.max(h.length, ...safe.map((r) => (r[i] ?? '').length)));
  const fmt = (cells: string[], colour: boolean) =>
    cells
      .map((cell, i) => {
        const padded = i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0);
        return colour && i === opts.statusColumn ? padded.replace(cell, () => statusText(cell)) : padded;
      })
      .join('  ')
      .trimEnd();
  return [trustedLine(c.bold(fmt(headers, false))), ...safe.map((r) => trustedLine(fmt(r, true)))];
}

/** Colours a key status word. */
export function statusText(status: string): string {
  const c = themeFor('stdout');
  if (status === 'active') return c.green(status);
  if (status === 'expiring') return c.yellow(status);
  return c.red(status);
}
