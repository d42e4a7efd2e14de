import type { ChalkInstance } from 'chalk';

/** Eighths of a cell, for bars that end between two columns. */
const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
const FULL = '█';

export interface BarRow {
  label: string;
  value: number;
  /** the part of `value` drawn in the warning colour (refusals) */
  marked?: number;
  /** text after the bar */
  note: string;
}

/** A bar of `cells` (fractional) character cells, in unicode blocks. */
export function bar(cells: number): string {
  const eighths = Math.round(cells * 8);
  return FULL.repeat(Math.floor(eighths / 8)) + (EIGHTHS[eighths % 8] ?? '');
}

/**
 * A horizontal bar chart, one line per row: label, bar scaled to the largest value so that every
 * line fits in `width` columns, then the note. The marked part of a bar (refusals) comes first, in
 * the theme's red; with colours off (NO_COLOR, not a terminal) it is drawn with `░` instead.
 */
export function renderBarChart(
  rows: readonly BarRow[],
  opts: { width: number; theme: ChalkInstance },
): string[] {
  const labelW = Math.max(0, ...rows.map((r) => r.label.length));
  const noteW = Math.max(0, ...rows.map((r) => r.note.length));
  const room = Math.max(10, opts.width - labelW - noteW - 3);
  const max = Math.max(0, ...rows.map((r) => r.value));
  const colour = opts.theme.level > 0;
  return rows.map((r) => {
    const cells = max === 0 ? 0 : (r.value / max) * room;
    const whole = bar(cells);
    const markedCells =
      max === 0 || !r.marked ? 0 : Math.min(whole.length, Math.max(1, Math.round((r.marked / max) * room)));
    const marked = colour ? opts.theme.red(whole.slice(0, markedCells)) : '░'.repeat(markedCells);
    const drawn = marked + whole.slice(markedCells);
    const pad = ' '.repeat(Math.max(0, Math.ceil(room) - whole.length));
    return `${r.label.padEnd(labelW)} ${drawn}${pad} ${r.note}`;
  });
}
