import type { ServerContext } from '../context.js';
import { exactTime } from './layout.js';
import { type Html, html } from './views.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export type UsageRange = '7d' | '30d';
export const USAGE_RANGES: readonly { value: UsageRange; label: string }[] = [
  { value: '7d', label: '7 days by hour' },
  { value: '30d', label: '30 days by day' },
];

export interface UsagePoint {
  /** the bucket's start, ms */
  at: number;
  requests: number;
  rejected: number;
}

/**
 * A key's requests and refusals over the last 7 days by hour or 30 days by day (UTC), every bucket
 * present (zeros included), oldest first: the hourly rows of the store plus what this instance has
 * not flushed yet (the same data as `GET /v1/api-keys/:key_id/usage`), one range query.
 */
export async function usageSeries(
  ctx: ServerContext,
  keyId: string,
  range: UsageRange,
): Promise<UsagePoint[]> {
  const step = range === '30d' ? DAY_MS : HOUR_MS;
  const count = range === '30d' ? 30 : 7 * 24;
  const now = ctx.clock().getTime();
  const end = now - (now % step) + step;
  const start = end - count * step;
  const points: UsagePoint[] = [];
  for (let t = start; t < end; t += step) points.push({ at: t, requests: 0, rejected: 0 });
  const rows = await ctx.store.usage.range(keyId, new Date(start).toISOString(), new Date(end).toISOString());
  for (const r of [...rows, ...ctx.usage.pending(keyId)]) {
    const t = Date.parse(r.hour);
    if (Number.isNaN(t) || t < start || t >= end) continue;
    const p = points[Math.floor((t - start) / step)];
    if (!p) continue;
    p.requests += Number(r.requests);
    p.rejected += Number(r.rejected);
  }
  return points;
}

const fmt = (n: number) => n.toLocaleString('en-US');
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * The usage chart, drawn on the server as SVG (no script, no chart library): bars of requests with
 * the refused part on top in a second colour, a title and description for screen readers, and the
 * numbers as a table (by day) under a disclosure.
 */
export function usageSection(o: { keyId: string; range: UsageRange; points: UsagePoint[] }): Html {
  const { points, range } = o;
  const total = points.reduce((s, p) => s + p.requests, 0);
  const rejected = points.reduce((s, p) => s + p.rejected, 0);
  const peak = points.reduce<UsagePoint | undefined>(
    (m, p) => (!m || p.requests > m.requests ? p : m),
    undefined,
  );
  const unit = range === '30d' ? 'day' : 'hour';
  const W = 720;
  const H = 160;
  const top = 10;
  const bottom = 22;
  const max = Math.max(1, ...points.map((p) => p.requests));
  const bw = W / points.length;
  const scale = (n: number) => (n / max) * (H - top - bottom);
  const bars = points.map((p, i) => {
    if (p.requests === 0) return '';
    const x = (i * bw + bw * 0.12).toFixed(1);
    const w = Math.max(0.8, bw * 0.76).toFixed(1);
    const h = scale(p.requests);
    const rh = scale(Math.min(p.rejected, p.requests));
    const y = H - bottom - h;
    return html`<g><title>${exactTime(new Date(p.at))}: ${fmt(p.requests)} requests, ${fmt(p.rejected)} refused</title><rect class="bar" x="${x}" y="${y.toFixed(1)}" width="${w}" height="${(h - rh).toFixed(1)}"></rect>${
      rh > 0
        ? html`<rect class="bar-rejected" x="${x}" y="${(y + h - rh).toFixed(1)}" width="${w}" height="${rh.toFixed(1)}"></rect>`
        : ''
    }</g>`;
  });
  // a label at each day (7 d) or each 5th day (30 d)
  const labels = points.flatMap((p, i) => {
    const d = new Date(p.at);
    const show = range === '30d' ? i % 5 === 0 : d.getUTCHours() === 0;
    // no label that would run off the right edge
    if (!show || i * bw > W - 36) return [];
    return [html`<text x="${(i * bw).toFixed(1)}" y="${H - 6}">${day(p.at).slice(5)}</text>`];
  });
  const summary =
    total === 0
      ? `No requests in the last ${range === '30d' ? '30 days' : '7 days'}.`
      : `${fmt(total)} requests in the last ${range === '30d' ? '30 days' : '7 days'}, ${fmt(rejected)} of them refused; the busiest ${unit} was ${exactTime(new Date(peak?.at ?? 0))} with ${fmt(peak?.requests ?? 0)}.`;
  const byDay = new Map<string, { requests: number; rejected: number }>();
  for (const p of points) {
    const k = day(p.at);
    const b = byDay.get(k) ?? { requests: 0, rejected: 0 };
    b.requests += p.requests;
    b.rejected += p.rejected;
    byDay.set(k, b);
  }
  const tabs = html`<nav class="tabs" aria-label="Usage range">${USAGE_RANGES.map((r) =>
    r.value === range
      ? html`<a class="button secondary" aria-current="true" href="/keys/${o.keyId}?usage=${r.value}#h-usage">${r.label}</a>`
      : html`<a class="button secondary" href="/keys/${o.keyId}?usage=${r.value}#h-usage">${r.label}</a>`,
  )}</nav>`;
  return html`<section class="card" aria-labelledby="h-usage"><div class="head"><h2 id="h-usage">Usage</h2>${tabs}</div>
<p id="usage-summary">${summary}</p>
<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="usage-title usage-desc" preserveAspectRatio="none">
<title id="usage-title">Requests per ${unit}, last ${range === '30d' ? '30 days' : '7 days'} (UTC)</title>
<desc id="usage-desc">${summary}</desc>
<line class="axis" x1="0" y1="${H - bottom}" x2="${W}" y2="${H - bottom}"></line>
${bars}${labels}</svg>
<p class="muted legend"><span class="swatch"></span> requests <span class="swatch rejected"></span> refused (rate limit, scope) · busiest ${unit}: ${fmt(max === 1 && total === 0 ? 0 : max)}</p>
<details><summary>The numbers, by day</summary><div class="scroll"><table>
<caption class="sr-only">Requests per day (UTC)</caption>
<thead><tr><th scope="col">Day (UTC)</th><th scope="col" class="num">Requests</th><th scope="col" class="num">Refused</th></tr></thead>
<tbody>${[...byDay.entries()]
    .reverse()
    .map(
      ([d, b]) =>
        html`<tr><td>${d}</td><td class="num">${fmt(b.requests)}</td><td class="num">${fmt(b.rejected)}</td></tr>`,
    )}</tbody></table></div></details></section>`;
}
