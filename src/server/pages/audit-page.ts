import type { AuditEvent } from '../services/audit.js';
import { dashboardLayout, timeTag, type Viewer } from './layout.js';
import { type Html, html } from './views.js';

/** The `since` choices of the audit filter (the API takes any duration or time; the page these). */
export const SINCE_CHOICES: readonly { value: string; label: string }[] = [
  { value: '1h', label: 'Last hour' },
  { value: '24h', label: 'Last 24 hours' },
  { value: '7d', label: 'Last 7 days' },
  { value: '30d', label: 'Last 30 days' },
  { value: '90d', label: 'Last 90 days' },
];

export interface AuditFilters {
  action?: string;
  keyId?: string;
  actorId?: string;
  since?: string;
}

export interface AuditView {
  viewer: Viewer;
  orgName: string;
  /** true: the whole organization's log (owner, admin); false: what the viewer did or owns */
  whole: boolean;
  actions: readonly string[];
  members: { user_id: string; email: string }[];
  filters: AuditFilters;
  events: AuditEvent[];
  nextCursor: string | null;
  paged: boolean;
  /** a filter value that could not be used, said plainly */
  problem?: string;
  now: Date;
}

/** A detail value as one short line (the log's details never hold a secret: see scrubDetails). */
function detailsText(details: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(details)) {
    const text = typeof v === 'string' ? v : JSON.stringify(v);
    parts.push(`${k}: ${text}`);
  }
  const all = parts.join(' · ');
  return all.length > 160 ? `${all.slice(0, 159)}…` : all;
}

function actorCell(e: AuditEvent): Html {
  if (e.actor.type === 'system') return html`<span class="muted">Breeze</span>`;
  const who = e.actor.email ?? e.actor.id;
  return e.actor.key_id
    ? html`${who}<br><small class="muted">with key <code>${e.actor.key_id}</code></small>`
    : html`${who}`;
}

function targetCell(e: AuditEvent): Html {
  if (e.target.type === 'key')
    return html`key <a href="/keys/${e.target.id}"><code>${e.target.id}</code></a>`;
  return html`${e.target.type.replace('_', ' ')} <code>${e.target.id}</code>`;
}

/** The events as a table, newest first (the audit page and a key's page). */
export function auditTable(events: readonly AuditEvent[], now: Date, caption: string): Html {
  return html`<div class="scroll"><table>
<caption class="sr-only">${caption}</caption>
<thead><tr><th scope="col">When</th><th scope="col">Action</th><th scope="col">Actor</th><th scope="col">Target</th><th scope="col">Details</th><th scope="col">From</th></tr></thead>
<tbody>${events.map(
    (e) => html`<tr>
<td>${timeTag(e.at, now)}</td>
<td><code>${e.action}</code></td>
<td>${actorCell(e)}</td>
<td>${targetCell(e)}</td>
<td class="details">${detailsText(e.details)}</td>
<td>${e.ip ?? html`<span class="muted">—</span>`}</td>
</tr>`,
  )}</tbody></table></div>`;
}

function auditUrl(v: AuditView, extra: Record<string, string>): string {
  const q = new URLSearchParams({ org_id: v.viewer.orgId });
  const f = v.filters;
  if (f.action) q.set('action', f.action);
  if (f.keyId) q.set('key_id', f.keyId);
  if (f.actorId) q.set('actor_id', f.actorId);
  if (f.since) q.set('since', f.since);
  for (const [k, val] of Object.entries(extra)) q.set(k, val);
  return `/audit?${q}`;
}

/** `/audit`: the organization's audit log with filters (action, key, actor, since), 50 a page. */
export function auditPage(v: AuditView): string {
  const f = v.filters;
  const filters = html`<form method="get" action="/audit" class="row" aria-label="Filter events">
<input type="hidden" name="org_id" value="${v.viewer.orgId}">
<div class="field"><label for="action">Action</label><select id="action" name="action"><option value="">Any action</option>${v.actions.map(
    (a) => html`<option value="${a}"${a === f.action ? ' selected' : ''}>${a}</option>`,
  )}</select></div>
<div class="field"><label for="actor_id">Actor</label><select id="actor_id" name="actor_id"><option value="">Anyone</option>${v.members.map(
    (m) =>
      html`<option value="${m.user_id}"${m.user_id === f.actorId ? ' selected' : ''}>${m.email}</option>`,
  )}</select></div>
<div class="field"><label for="key_id">Key id</label><input id="key_id" name="key_id" type="text" autocomplete="off" spellcheck="false" placeholder="key_…" value="${f.keyId ?? ''}"></div>
<div class="field"><label for="since">Since</label><select id="since" name="since"><option value="">Any time</option>${SINCE_CHOICES.map(
    (s) => html`<option value="${s.value}"${s.value === f.since ? ' selected' : ''}>${s.label}</option>`,
  )}</select></div>
<button class="secondary" type="submit">Apply</button></form>`;
  const filtered = Boolean(f.action || f.keyId || f.actorId || f.since);
  const pager = html`<nav class="pager" aria-label="Pages">${
    v.paged ? html`<a class="button secondary" href="${auditUrl(v, {})}">Newest</a>` : ''
  }${v.nextCursor ? html`<a class="button secondary" href="${auditUrl(v, { cursor: v.nextCursor })}" rel="next">Older events</a>` : ''}</nav>`;
  const empty = html`<div class="empty"><p>${filtered || v.paged ? 'No events match this filter.' : 'Nothing recorded yet.'}</p>${
    filtered ? html`<a href="/audit?org_id=${v.viewer.orgId}">Show every event</a>` : ''
  }</div>`;
  return dashboardLayout({
    title: 'Audit log',
    viewer: v.viewer,
    active: 'audit',
    body: html`<div class="head"><div><h1>Audit log</h1><p class="muted">${v.orgName} · ${
      v.whole ? 'every member’s actions' : 'what you did, and what was done to your keys and membership'
    }</p></div></div>
<section class="card" aria-label="Events">${filters}
${v.problem ? html`<p class="flash error" role="alert">${v.problem}</p>` : ''}
${v.events.length === 0 ? empty : html`${auditTable(v.events, v.now, 'Audit events, newest first')}${pager}`}</section>`,
  });
}

/** The events of one key on its page, newest first, with a link to older ones. */
export function keyEventsSection(o: {
  keyId: string;
  orgId: string;
  events: AuditEvent[];
  nextCursor: string | null;
  paged: boolean;
  usage: string;
  now: Date;
}): Html {
  const base = `/keys/${o.keyId}?usage=${o.usage}`;
  const pager = html`<nav class="pager" aria-label="Event pages">${
    o.paged ? html`<a class="button secondary" href="${base}#h-events">Newest</a>` : ''
  }${o.nextCursor ? html`<a class="button secondary" href="${base}&amp;events_cursor=${o.nextCursor}#h-events" rel="next">Older events</a>` : ''}
<a class="button secondary" href="/audit?org_id=${o.orgId}&amp;key_id=${o.keyId}">In the audit log</a></nav>`;
  return html`<section class="card" aria-labelledby="h-events"><h2 id="h-events">Events</h2>
${o.events.length === 0 ? html`<p class="muted">No events recorded for this key.</p>` : auditTable(o.events, o.now, 'Events of this key, newest first')}
${pager}</section>`;
}
