import type { ApiKeyInfo, KeyStatus } from '../../core/types.js';
import type { ProjectRow } from '../store/orgs.js';
import { dashboardLayout, timeTag, type Viewer } from './layout.js';
import { type Html, html } from './views.js';

export const STATUS_FILTERS: readonly KeyStatus[] = ['active', 'expiring', 'expired', 'disabled'];

export interface KeysView {
  viewer: Viewer;
  orgName: string;
  projects: ProjectRow[];
  projectId?: string;
  status?: KeyStatus;
  keys: ApiKeyInfo[];
  /** requests per key over the last 24 hours (one grouped query for the page) */
  requests24h: ReadonlyMap<string, number>;
  /** the link to the next page, if there is one */
  nextCursor: string | null;
  /** true when this is not the first page */
  paged: boolean;
  /** true when the viewer sees every member's keys (owner, admin) */
  allMembers: boolean;
  now: Date;
}

export function statusChip(status: KeyStatus): Html {
  return html`<span class="status ${status}">${status}</span>`;
}

export function scopeChips(scopes: readonly string[]): Html {
  return html`${scopes.map((s) => html`<span class="chip">${s}</span>`)}`;
}

function listUrl(v: KeysView, extra: Record<string, string>): string {
  const q = new URLSearchParams({ org_id: v.viewer.orgId });
  if (v.projectId) q.set('project_id', v.projectId);
  if (v.status) q.set('status', v.status);
  for (const [k, val] of Object.entries(extra)) q.set(k, val);
  return `/keys?${q}`;
}

function emptyState(v: KeysView): Html {
  if (v.status || v.paged) {
    return html`<div class="empty"><p>No keys match this filter.</p><a href="${listUrl({ ...v, status: undefined }, {})}">Show all keys</a></div>`;
  }
  return html`<div class="empty"><h2>No API keys here yet</h2>
<p class="muted">Create one on this page, or from your terminal:</p>
<pre><code>breeze login
breeze keys create --name "my service" --scopes read,write</code></pre>
<p class="muted"><kbd>breeze login</kbd> signs the CLI in (it gets a key of its own); <kbd>breeze keys create</kbd> prints a new key once.</p>
<a class="button primary" href="/keys/new?org_id=${v.viewer.orgId}">Create a key</a></div>`;
}

/** `/keys`: the organization's keys (a member's own only), newest first, filter and paging. */
export function keysPage(v: KeysView): string {
  const table = html`<div class="scroll"><table>
<caption class="sr-only">API keys</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Prefix</th><th scope="col">Scopes</th><th scope="col">Status</th><th scope="col" class="num">Requests (24 h)</th><th scope="col">Last used</th><th scope="col">Expires</th><th scope="col">Created</th></tr></thead>
<tbody>${v.keys.map(
    (k) => html`<tr>
<td><a href="/keys/${k.key_id}">${k.name}</a></td>
<td><code>${k.prefix}…</code></td>
<td>${scopeChips(k.scopes)}</td>
<td>${statusChip(k.status)}</td>
<td class="num">${(v.requests24h.get(k.key_id) ?? 0).toLocaleString('en-US')}</td>
<td>${timeTag(k.last_used_at, v.now, 'never')}</td>
<td>${timeTag(k.expires_at, v.now, 'never')}</td>
<td>${timeTag(k.created_at, v.now)}</td>
</tr>`,
  )}</tbody></table></div>`;
  const pager = html`<nav class="pager" aria-label="Pages">${
    v.paged ? html`<a class="button secondary" href="${listUrl(v, {})}">First page</a>` : ''
  }${v.nextCursor ? html`<a class="button secondary" href="${listUrl(v, { cursor: v.nextCursor })}" rel="next">Next page</a>` : ''}</nav>`;
  const filters = html`<form method="get" action="/keys" class="row" aria-label="Filter keys">
<input type="hidden" name="org_id" value="${v.viewer.orgId}">
<div class="field"><label for="project_id">Project</label><select id="project_id" name="project_id"><option value="">All projects</option>${v.projects.map(
    (p) => html`<option value="${p.id}"${p.id === v.projectId ? ' selected' : ''}>${p.name}</option>`,
  )}</select></div>
<div class="field"><label for="status">Status</label><select id="status" name="status"><option value="">Any status</option>${STATUS_FILTERS.map(
    (s) => html`<option value="${s}"${s === v.status ? ' selected' : ''}>${s}</option>`,
  )}</select></div>
<button class="secondary" type="submit">Apply</button></form>`;
  return dashboardLayout({
    title: 'API keys',
    viewer: v.viewer,
    active: 'keys',
    body: html`<div class="head"><div><h1>API keys</h1><p class="muted">${v.orgName} · ${
      v.allMembers ? 'every member’s keys' : 'your keys'
    }</p></div><a class="button primary" href="/keys/new?org_id=${v.viewer.orgId}${v.projectId ? `&project_id=${v.projectId}` : ''}">Create a key</a></div>
<section class="card" aria-label="Keys">${filters}
${v.keys.length === 0 ? emptyState(v) : html`${table}${pager}`}</section>`,
  });
}
