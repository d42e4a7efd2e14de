import type { ApiKeyInfo } from '../../core/types.js';
import type { SessionRow } from '../store/sessions.js';
import { statusChip } from './keys-page.js';
import { dashboardLayout, postForm, timeTag, type Viewer } from './layout.js';
import { html } from './views.js';

export interface AccountView {
  viewer: Viewer;
  sessions: SessionRow[];
  currentSessionId: string;
  /** keys minted by approved CLI logins (`breeze login`) */
  cliKeys: ApiKeyInfo[];
  now: Date;
}

/** `/account`: email, browser sessions (sign out one, or everywhere), CLI logins approved. */
export function accountPage(v: AccountView): string {
  const csrf = v.viewer.csrf;
  const sessions = html`<section class="card" aria-labelledby="h-sessions"><h2 id="h-sessions">Browser sessions</h2>
<div class="scroll"><table><caption class="sr-only">Browser sessions</caption>
<thead><tr><th scope="col">Signed in</th><th scope="col">Expires</th><th scope="col"><span class="sr-only">Action</span></th></tr></thead>
<tbody>${v.sessions.map((s) => {
    const current = s.id === v.currentSessionId;
    return html`<tr${current ? html` aria-current="true"` : ''}><td>${timeTag(s.created_at, v.now)}${current ? html`<span class="badge">this browser</span>` : ''}</td><td>${timeTag(s.expires_at, v.now)}</td>
<td>${
      current
        ? postForm('/logout', csrf, html`<button class="link" type="submit">Sign out</button>`, {
            className: 'inline',
          })
        : postForm(
            `/account/sessions/${s.id}/revoke`,
            csrf,
            html`<button class="link" type="submit">Sign out this session<span class="sr-only"> (signed in ${s.created_at})</span></button>`,
            { className: 'inline' },
          )
    }</td></tr>`;
  })}</tbody></table></div>
${postForm(
  '/account/sessions/revoke-all',
  csrf,
  html`<button class="secondary after" type="submit">Sign out everywhere</button>`,
  {
    confirm: 'Sign out of every browser, this one included?',
  },
)}
<p class="muted after">Signs out every browser, this one included. API keys and CLI logins keep working: disable or rotate those below.</p></section>`;
  const cli = html`<section class="card" aria-labelledby="h-cli"><h2 id="h-cli">CLI logins you approved</h2>
${
  v.cliKeys.length === 0
    ? html`<p class="muted">None yet. <kbd>breeze login</kbd> in a terminal asks you to approve it here.</p>`
    : html`<div class="scroll"><table><caption class="sr-only">Keys of approved CLI logins</caption>
<thead><tr><th scope="col">Key</th><th scope="col">Status</th><th scope="col">Approved</th><th scope="col">Last used</th></tr></thead>
<tbody>${v.cliKeys.map(
        (k) =>
          html`<tr><td><a href="/keys/${k.key_id}">${k.name}</a> <code>${k.prefix}…</code></td><td>${statusChip(k.status)}</td><td>${timeTag(k.created_at, v.now)}</td><td>${timeTag(k.last_used_at, v.now, 'never')}</td></tr>`,
      )}</tbody></table></div>`
}</section>`;
  return dashboardLayout({
    title: 'Account',
    viewer: v.viewer,
    active: 'account',
    body: html`<div class="head"><div><h1>Account</h1><p class="muted">Signed in as <strong>${v.viewer.email}</strong></p></div></div>
${sessions}
${cli}`,
  });
}
