import type { ApiKeyInfo, Role } from '../../core/types.js';
import { plaintextSection, type ScopeChoice, scopeFieldset } from './key-new-page.js';
import { scopeChips, statusChip } from './keys-page.js';
import { dashboardLayout, postForm, timeTag, type Viewer } from './layout.js';
import { type Html, html } from './views.js';

/** Grace choices of the rotate form (seconds the old key keeps working). */
export const GRACE_CHOICES: readonly { value: number; label: string }[] = [
  { value: 0, label: 'End it now' },
  { value: 3600, label: '1 hour' },
  { value: 86400, label: '24 hours' },
  { value: 7 * 86400, label: '7 days' },
];

export interface KeyDetailView {
  viewer: Viewer;
  key: ApiKeyInfo;
  orgName: string;
  projectName: string;
  creatorEmail: string;
  role: Role;
  scopes: ScopeChoice[];
  /** the key was rotated already (no second rotation) */
  rotated: boolean;
  /** why the viewer may not rotate this key (authz.ts), if they may not */
  rotateRefusal?: string | null;
  now: Date;
  /** round 2: usage chart and audit events drop in here */
  extraSections?: Html[];
}

function keyBase(id: string): string {
  return `/keys/${encodeURIComponent(id)}`;
}

/** `/keys/:key_id`: details and every action on one key. */
export function keyPage(v: KeyDetailView): string {
  const k = v.key;
  const base = keyBase(k.key_id);
  const csrf = v.viewer.csrf;
  const usable = k.status === 'active' || k.status === 'expiring';
  const details = html`<section class="card" aria-labelledby="h-details"><h2 id="h-details">Details</h2><dl class="facts">
<dt>Key id</dt><dd><code>${k.key_id}</code></dd>
<dt>Prefix</dt><dd><code>${k.prefix}…</code></dd>
<dt>Status</dt><dd>${statusChip(k.status)}</dd>
<dt>Scopes</dt><dd>${scopeChips(k.scopes)}</dd>
<dt>Organization / project</dt><dd>${v.orgName} / ${v.projectName}</dd>
<dt>Created by</dt><dd>${v.creatorEmail} · ${k.created_via.replace('_', ' ')}</dd>
<dt>Created</dt><dd>${timeTag(k.created_at, v.now)}</dd>
<dt>Last used</dt><dd>${timeTag(k.last_used_at, v.now, 'never')}</dd>
<dt>Expires</dt><dd>${timeTag(k.expires_at, v.now, 'never')}</dd>
${k.rotated_from ? html`<dt>Rotated from</dt><dd><a href="${keyBase(k.rotated_from)}"><code>${k.rotated_from}</code></a></dd>` : ''}
${k.disabled_at ? html`<dt>Disabled</dt><dd>${timeTag(k.disabled_at, v.now)}</dd>` : ''}
</dl></section>`;
  const edit = html`<section class="card" aria-labelledby="h-edit"><h2 id="h-edit">Name and scopes</h2>
${postForm(
  `${base}/rename`,
  csrf,
  html`<div class="row"><div class="field"><label for="name">Name</label><input id="name" name="name" type="text" required maxlength="200" autocomplete="off" value="${k.name}"></div><button class="secondary" type="submit">Rename</button></div>`,
)}
${postForm(
  `${base}/scopes`,
  csrf,
  html`<div class="after">${scopeFieldset(v.scopes, v.role, v.orgName)}</div><button class="secondary" type="submit">Save scopes</button>`,
)}</section>`;
  const rotate = v.rotateRefusal
    ? html`<p class="muted">${v.rotateRefusal}</p>`
    : v.rotated
      ? html`<p class="muted">This key was rotated already; rotate its successor instead.</p>`
      : usable
        ? postForm(
            `${base}/rotate`,
            csrf,
            html`<div class="row"><div class="field"><label for="grace">Keep the old key working for</label><select id="grace" name="grace_period_s">${GRACE_CHOICES.map(
              (g) =>
                html`<option value="${g.value}"${g.value === 3600 ? ' selected' : ''}>${g.label}</option>`,
            )}</select></div><button class="secondary" type="submit">Rotate key</button></div>`,
          )
        : html`<p class="muted">Only an active key can be rotated.</p>`;
  const toggle =
    k.status === 'disabled'
      ? postForm(`${base}/enable`, csrf, html`<button class="secondary" type="submit">Enable key</button>`)
      : postForm(
          `${base}/disable`,
          csrf,
          html`<button class="secondary" type="submit">Disable key</button>`,
          {
            confirm: `Disable “${k.name}”? Requests with it fail until you enable it again.`,
          },
        );
  const actions = html`<section class="card" aria-labelledby="h-actions"><h2 id="h-actions">Rotate, disable, delete</h2>
<p class="muted">Rotating makes a new key with the same name, scopes and expiry; its plaintext is shown once.</p>
${rotate}
<div class="actions after">${toggle}<a class="button danger" href="${base}/delete">Delete key…</a></div></section>`;
  return dashboardLayout({
    title: k.name,
    viewer: v.viewer,
    active: 'keys',
    body: html`<div class="head"><div><p class="muted"><a href="/keys?org_id=${v.viewer.orgId}">API keys</a> /</p><h1>${k.name}</h1></div>${statusChip(k.status)}</div>
<div class="grid2">${details}${edit}</div>
${actions}
${v.extraSections ?? ''}`,
  });
}

/** `/keys/:key_id/delete`: the confirmation, naming the key; works without JavaScript. */
export function deleteConfirmPage(o: { viewer: Viewer; key: ApiKeyInfo; now: Date }): string {
  const k = o.key;
  const base = keyBase(k.key_id);
  return dashboardLayout({
    title: `Delete ${k.name}?`,
    viewer: o.viewer,
    active: 'keys',
    body: html`<section class="card"><h1>Delete the key “${k.name}”?</h1>
<p>Key <code>${k.prefix}…</code> (${k.scopes.join(', ')}), last used ${timeTag(k.last_used_at, o.now, 'never')}. Every request with it fails at once, and this cannot be undone. To stop it only for a while, disable it instead.</p>
<div class="actions">${postForm(`${base}/delete`, o.viewer.csrf, html`<button class="danger" type="submit">Delete “${k.name}” for good</button>`, { className: 'inline' })}<a class="button secondary" href="${base}">Cancel</a></div></section>`,
  });
}

/** The answer to a rotation: the successor's plaintext, once. */
export function rotatedKeyPage(o: {
  viewer: Viewer;
  key: ApiKeyInfo;
  previous: ApiKeyInfo;
  apiKey: string;
  now: Date;
}): string {
  return dashboardLayout({
    title: 'Key rotated',
    viewer: o.viewer,
    active: 'keys',
    body: html`<div class="head"><div><h1>“${o.key.name}” rotated</h1></div></div>
<section class="card">${plaintextSection(o.apiKey, 'Put it where the old key was.')}
<p>The old key <code>${o.previous.prefix}…</code> ${
      o.previous.status === 'expired'
        ? html`has stopped working.`
        : html`keeps working until ${timeTag(o.previous.expires_at, o.now)}.`
    }</p>
<div class="actions"><a class="button primary" href="/keys/${o.key.key_id}">I saved it: show the new key</a></div></section>`,
  });
}
