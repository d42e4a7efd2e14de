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
  /** the organizations the user is a member of now (a key of any other answers 401) */
  memberOf: ReadonlySet<string>;
  now: Date;
}

/** A status under which the key itself would be accepted. */
function usable(k: ApiKeyInfo): boolean {
  return k.status === 'active' || k.status === 'expiring';
}

/** What such a key shows when its user is no member of its organization any more (PLATFORM.md: 401). */
const NOT_MEMBER_CHIP = html`<span class="status not-member" title="You are no longer a member of this key's organization: it is refused (401).">not a member</span>`;

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
<tbody>${v.cliKeys.map((k) => {
        // a key of an organization the user left (or was removed from) answers 401 whatever its own
        // status says, and its page is 404 to them: say so, and link nowhere
        const member = v.memberOf.has(k.org_id ?? '');
        return html`<tr><td>${member ? html`<a href="/keys/${k.key_id}">${k.name}</a>` : k.name} <code>${k.prefix}…</code></td><td>${member || !usable(k) ? statusChip(k.status) : NOT_MEMBER_CHIP}</td><td>${timeTag(k.created_at, v.now)}</td><td>${timeTag(k.last_used_at, v.now, 'never')}</td></tr>`;
      })}</tbody></table></div>
${
  v.cliKeys.some((k) => usable(k) && !v.memberOf.has(k.org_id ?? ''))
    ? html`<p class="muted after">A key marked <em>not a member</em> belongs to an organization you are no longer a member of: it is refused (401), and only that organization's owners and admins can disable or delete it. It works again if you rejoin; run <kbd>breeze logout</kbd> on that machine to be rid of it.</p>`
    : ''
}`
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
