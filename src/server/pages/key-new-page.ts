import type { ApiKeyInfo, Role, Scope } from '../../core/types.js';
import type { ProjectRow } from '../store/orgs.js';
import { scopeChips } from './keys-page.js';
import { dashboardLayout, postForm, timeTag, type Viewer } from './layout.js';
import { type Html, html } from './views.js';

export const SCOPE_HELP: Record<string, string> = {
  read: 'read the account and its keys',
  write: 'make changes',
  admin: 'create, rotate and delete keys',
  verify: 'verify other keys (services protected by Breeze)',
};

/** Expiry choices of the form: value = seconds ('' = never). */
export const EXPIRY_CHOICES: readonly { value: string; label: string }[] = [
  { value: '', label: 'Never' },
  { value: String(7 * 86400), label: '7 days' },
  { value: String(30 * 86400), label: '30 days' },
  { value: String(90 * 86400), label: '90 days' },
  { value: String(365 * 86400), label: '1 year' },
];

export interface ScopeChoice {
  scope: Scope;
  /** false when the viewer's role caps it away */
  allowed: boolean;
  checked: boolean;
}

/** The scope checkboxes: scopes beyond the role's cap are shown disabled, with the reason. */
export function scopeFieldset(choices: ScopeChoice[], role: Role, orgName: string): Html {
  const capped = choices.filter((c) => !c.allowed).map((c) => c.scope);
  return html`<fieldset><legend>Scopes</legend>${choices.map(
    (c) =>
      html`<label class="check"><input type="checkbox" name="scopes" value="${c.scope}"${c.checked && c.allowed ? ' checked' : ''}${
        c.allowed ? '' : html` disabled aria-describedby="scope-cap"`
      }><span>${c.scope}<small>${SCOPE_HELP[c.scope] ?? ''}</small></span></label>`,
  )}${
    capped.length
      ? html`<p class="muted" id="scope-cap">Not available to you: ${capped.join(', ')}. Your role in ${orgName} is <strong>${role}</strong>, which caps keys to ${choices
          .filter((c) => c.allowed)
          .map((c) => c.scope)
          .join(', ')}.</p>`
      : ''
  }</fieldset>`;
}

export interface NewKeyView {
  viewer: Viewer;
  orgName: string;
  role: Role;
  projects: ProjectRow[];
  projectId?: string;
  scopes: ScopeChoice[];
  name?: string;
  expiry?: string;
  /** a one-time token: a resubmitted form (reload, back) creates no second key */
  nonce: string;
  error?: string;
}

/** `/keys/new`: the create form. */
export function newKeyPage(v: NewKeyView): string {
  return dashboardLayout({
    title: 'Create a key',
    viewer: v.viewer,
    active: 'keys',
    body: html`<div class="head"><div><h1>Create an API key</h1><p class="muted">${v.orgName}</p></div></div>
<section class="card">
${v.error ? html`<div class="flash error" role="alert">${v.error}</div>` : ''}
${postForm(
  '/keys/new',
  v.viewer.csrf,
  html`<input type="hidden" name="org_id" value="${v.viewer.orgId}"><input type="hidden" name="nonce" value="${v.nonce}">
<div class="field"><label for="name">Name</label><input id="name" name="name" type="text" required maxlength="200" autocomplete="off" placeholder="e.g. billing service (production)" value="${v.name ?? ''}"${v.error ? '' : ' autofocus'}></div>
<div class="field"><label for="project_id">Project</label><select id="project_id" name="project_id">${v.projects.map(
    (p) => html`<option value="${p.id}"${p.id === v.projectId ? ' selected' : ''}>${p.name}</option>`,
  )}</select></div>
${scopeFieldset(v.scopes, v.role, v.orgName)}
<div class="field"><label for="expires_in_s">Expires</label><select id="expires_in_s" name="expires_in_s">${EXPIRY_CHOICES.map(
    (c) =>
      html`<option value="${c.value}"${c.value === (v.expiry ?? '') ? ' selected' : ''}>${c.label}</option>`,
  )}</select></div>
<div class="actions"><button class="primary" type="submit">Create key</button><a class="button secondary" href="/keys?org_id=${v.viewer.orgId}">Cancel</a></div>`,
)}
</section>`,
  });
}

/**
 * The plaintext, once: the answer to the POST that created (or rotated) the key. Never stored,
 * never re-rendered (no-store; a resubmitted form is refused).
 */
export function plaintextSection(apiKey: string, what: string): Html {
  return html`<div class="warning" role="alert"><strong>Copy this key now.</strong> It is shown only this once: Breeze keeps only a hash, so nobody can show it to you again. ${what}</div>
<div class="secret"><output id="new-key" aria-label="The new API key">${apiKey}</output><button class="primary" type="button" data-copy="new-key" data-status="copy-status" hidden>Copy</button></div>
<p id="copy-status" class="muted" role="status" aria-live="polite"></p>`;
}

export function createdKeyPage(o: { viewer: Viewer; key: ApiKeyInfo; apiKey: string; now: Date }): string {
  const k = o.key;
  return dashboardLayout({
    title: 'Key created',
    viewer: o.viewer,
    active: 'keys',
    body: html`<div class="head"><div><h1>Key “${k.name}” created</h1></div></div>
<section class="card">${plaintextSection(o.apiKey, 'Lost it? Rotate the key to get a new one.')}
<dl class="facts"><dt>Prefix</dt><dd><code>${k.prefix}…</code></dd><dt>Scopes</dt><dd>${scopeChips(k.scopes)}</dd><dt>Expires</dt><dd>${timeTag(k.expires_at, o.now, 'never')}</dd></dl>
<p class="after">Use it as <code>Authorization: Bearer …</code> or <code>xi-api-key: …</code>.</p>
<div class="actions"><a class="button primary" href="/keys/${k.key_id}">I saved it: show the key</a><a class="button secondary" href="/keys?org_id=${o.viewer.orgId}">Back to all keys</a></div></section>`,
  });
}
