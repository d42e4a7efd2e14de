/** A target a figure is judged against. */
export interface Target {
  op: '>=' | '<=' | '<';
  value: number;
}

export type Verdict = 'PASS' | 'MISS' | 'INFO';

export interface Figure {
  /** stable machine-readable id, e.g. `sqlite.me_over_healthz` */
  id: string;
  label: string;
  value: number;
  unit: '' | 'x' | 'req/s' | 'ms' | 'MB/s' | 'files/s';
  target?: Target;
  verdict: Verdict;
  /** how the figure was obtained, in a few words */
  note?: string;
}

export type SectionStatus = 'ok' | 'skipped' | 'failed';

export interface SectionResult {
  id: string;
  title: string;
  status: SectionStatus;
  /** why it was skipped or failed */
  reason?: string;
  figures: Figure[];
  /** raw measurements, for results.json */
  runs: unknown[];
  /** anything a reader needs to interpret the figures */
  notes: string[];
  seconds: number;
}

export function judge(value: number, target: Target | undefined): Verdict {
  if (!target) return 'INFO';
  if (!Number.isFinite(value)) return 'MISS';
  switch (target.op) {
    case '>=':
      return value >= target.value ? 'PASS' : 'MISS';
    case '<=':
      return value <= target.value ? 'PASS' : 'MISS';
    case '<':
      return value < target.value ? 'PASS' : 'MISS';
  }
}

export function figure(f: Omit<Figure, 'verdict'>): Figure {
  return { ...f, verdict: judge(f.value, f.target) };
}

function formatValue(value: number, unit: Figure['unit']): string {
  if (!Number.isFinite(value)) return 'n/a';
  switch (unit) {
    case 'x':
      return value.toFixed(2);
    case 'req/s':
      return `${Math.round(value).toLocaleString('en-US')} req/s`;
    case 'ms':
      return `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;
    case 'MB/s':
    case 'files/s':
      return `${Math.round(value).toLocaleString('en-US')} ${unit}`;
    default:
      return String(value);
  }
}

function formatTarget(t: Target | undefined, unit: Figure['unit']): string {
  if (!t) return '';
  return `${t.op} ${unit === 'x' ? t.value.toFixed(2) : formatValue(t.value, unit)}`;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/** The human-readable report: one table per section, with skip/failure reasons and notes. */
export function renderTable(sections: SectionResult[]): string {
  const lines: string[] = [];
  for (const s of sections) {
    lines.push('');
    lines.push(`== ${s.title} (${s.seconds.toFixed(0)} s)`);
    if (s.status === 'skipped') {
      lines.push(`   skipped: ${s.reason ?? ''}`);
      continue;
    }
    if (s.status === 'failed') lines.push(`   FAILED: ${s.reason ?? ''}`);
    const rows = s.figures.map((f) => [
      f.label,
      formatValue(f.value, f.unit),
      formatTarget(f.target, f.unit),
      f.verdict === 'INFO' ? '' : f.verdict,
    ]);
    const header = ['figure', 'value', 'target', 'result'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const fmt = (r: string[]) => `   ${r.map((c, i) => pad(c, widths[i]!)).join('  ')}`.trimEnd();
    if (rows.length > 0) {
      lines.push(fmt(header));
      lines.push(`   ${widths.map((w) => '-'.repeat(w)).join('  ')}`);
      for (const r of rows) lines.push(fmt(r));
    }
    for (const n of s.notes) lines.push(`   note: ${n}`);
  }
  return lines.join('\n');
}
