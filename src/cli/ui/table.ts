import { themeFor } from './theme.js';

/** A plain table for a terminal: header in bold, columns padded, no borders (copy-paste friendly). */
export function renderTable(headers: string[], rows: string[][]): string {
  const c = themeFor('stdout');
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [c.bold(fmt(headers)), ...rows.map(fmt)].join('\n');
}

/** Colours a key status word. */
export function statusText(status: string): string {
  const c = themeFor('stdout');
  if (status === 'active') return c.green(status);
  if (status === 'expiring') return c.yellow(status);
  return c.red(status);
}
