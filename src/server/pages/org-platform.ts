import type { Role } from '../../core/types.js';
import type { OidcTrustView } from '../services/oidc.js';
import type { DeliveryView, WebhookView } from '../services/webhooks.js';
import type { ProjectRow } from '../store/orgs.js';
import { type ScopeChoice, scopeFieldset } from './key-new-page.js';
import { scopeChips } from './keys-page.js';
import { postForm, timeTag } from './layout.js';
import { type Html, html } from './views.js';

/** TTL choices of a new OIDC trust (seconds a minted key lives). */
export const TRUST_TTL_CHOICES: readonly { value: number; label: string }[] = [
  { value: 300, label: '5 minutes' },
  { value: 900, label: '15 minutes' },
  { value: 1800, label: '30 minutes' },
  { value: 3600, label: '1 hour' },
];

function deliveryStatus(d: DeliveryView): Html {
  const kind = d.status === 'delivered' ? 'active' : d.status === 'failed' ? 'expired' : 'expiring';
  return html`<span class="status ${kind}">${d.status}</span>`;
}

function deliveryLog(deliveries: readonly DeliveryView[], now: Date): Html {
  if (deliveries.length === 0) return html`<p class="muted">No deliveries yet.</p>`;
  return html`<div class="scroll"><table>
<caption class="sr-only">Recent deliveries, newest first</caption>
<thead><tr><th scope="col">Event</th><th scope="col">Status</th><th scope="col" class="num">Attempts</th><th scope="col">Answer</th><th scope="col">Queued</th><th scope="col">Next try</th></tr></thead>
<tbody>${deliveries.map(
    (d) =>
      html`<tr><td><code>${d.event}</code></td><td>${deliveryStatus(d)}</td><td class="num">${d.attempts}</td><td>${
        d.last_status_code !== null ? `HTTP ${d.last_status_code}` : (d.last_error ?? '—')
      }</td><td>${timeTag(d.created_at, now)}</td><td>${timeTag(d.next_attempt_at, now)}</td></tr>`,
  )}</tbody></table></div>`;
}

/** Webhooks of the organization (owners, admins): list with delivery log, test ping, delete; create. */
export function webhooksSection(o: {
  orgId: string;
  csrf: string;
  hooks: { hook: WebhookView; deliveries: DeliveryView[] }[];
  events: readonly string[];
  canManage: boolean;
  now: Date;
}): Html {
  const base = `/orgs/${o.orgId}/webhooks`;
  const list =
    o.hooks.length === 0
      ? html`<p class="muted">No webhooks. Breeze POSTs each event (signed with a JWT from this server's JWKS) to the URLs you add here.</p>`
      : html`${o.hooks.map(
          ({
            hook,
            deliveries,
          }) => html`<article class="item"><div class="row spread"><div><strong class="mono">${hook.url}</strong><br><small class="muted">${
            hook.events.includes('*') ? 'every event' : hook.events.join(', ')
          } · added ${timeTag(hook.created_at, o.now)}</small></div>${
            o.canManage
              ? html`<div class="actions">${postForm(`${base}/${hook.id}/ping`, o.csrf, html`<button class="secondary" type="submit">Send test ping</button>`, { className: 'inline' })}${postForm(
                  `${base}/${hook.id}/delete`,
                  o.csrf,
                  html`<button class="danger" type="submit">Delete</button>`,
                  {
                    className: 'inline',
                    confirm: `Delete the webhook to ${hook.url}? Nothing more is sent there.`,
                  },
                )}</div>`
              : ''
          }</div>
<details><summary>Deliveries (${deliveries.length === 0 ? 'none' : `latest ${deliveries.length}`})</summary>${deliveryLog(deliveries, o.now)}</details></article>`,
        )}`;
  const form = o.canManage
    ? postForm(
        base,
        o.csrf,
        html`<h3>Add a webhook</h3><div class="field"><label for="webhook-url">URL</label><input id="webhook-url" name="url" type="text" inputmode="url" required maxlength="2048" autocomplete="off" placeholder="https://example.com/breeze-events"></div>
<fieldset><legend>Events</legend><label class="check"><input type="checkbox" name="events" value="*" checked><span>Every event</span></label>
<details><summary>Or pick events</summary><div class="columns">${o.events.map(
          (e) =>
            html`<label class="check"><input type="checkbox" name="events" value="${e}"><span><code>${e}</code></span></label>`,
        )}</div></details></fieldset>
<button class="primary" type="submit">Add webhook</button>`,
        { className: 'after' },
      )
    : '';
  return html`<section class="card" aria-labelledby="h-webhooks"><h2 id="h-webhooks">Webhooks</h2>${list}${form}</section>`;
}

function claimsText(claims: Record<string, string>): string {
  return Object.entries(claims)
    .map(([k, v]) => `${k} = ${v}`)
    .join(', ');
}

/** OIDC trusts (owners, admins): which CI jobs may trade their identity token for a short-lived key. */
export function oidcSection(o: {
  orgId: string;
  orgName: string;
  csrf: string;
  role: Role;
  trusts: OidcTrustView[];
  projects: ProjectRow[];
  scopes: ScopeChoice[];
  now: Date;
}): Html {
  const base = `/orgs/${o.orgId}/oidc-trusts`;
  const projectName = (id: string) => o.projects.find((p) => p.id === id)?.name ?? id;
  const list =
    o.trusts.length === 0
      ? html`<p class="muted">No trusts. A trust lets CI jobs (GitHub Actions, GitLab) exchange their OIDC token for a key that lives minutes: no stored secret in CI.</p>`
      : html`<div class="scroll"><table>
<caption class="sr-only">OIDC trusts</caption>
<thead><tr><th scope="col">Issuer</th><th scope="col">Claims</th><th scope="col">Project</th><th scope="col">Scopes</th><th scope="col">Key lifetime</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
<tbody>${o.trusts.map(
          (t) =>
            html`<tr><td class="mono">${t.issuer}<br><small class="muted">audience ${t.audience}</small></td><td class="details mono">${claimsText(t.claims)}</td><td>${projectName(t.project_id)}</td><td>${scopeChips(t.scopes)}</td><td>${Math.round(t.ttl_s / 60)} min</td><td>${postForm(
              `${base}/${t.id}/delete`,
              o.csrf,
              html`<button class="danger" type="submit">Delete</button>`,
              {
                className: 'inline',
                confirm: `Delete the trust for ${t.issuer}? Its jobs get no more keys.`,
                label: `Delete the trust for ${t.issuer}`,
              },
            )}</td></tr>`,
        )}</tbody></table></div>`;
  const form = postForm(
    base,
    o.csrf,
    html`<h3>Add a trust</h3><div class="field"><label for="oidc-issuer">Issuer</label><input id="oidc-issuer" name="issuer" type="text" inputmode="url" required maxlength="500" autocomplete="off" placeholder="https://token.actions.githubusercontent.com"></div>
<div class="field"><label for="oidc-audience">Audience <small class="muted">(optional; default: this server's URL)</small></label><input id="oidc-audience" name="audience" type="text" maxlength="500" autocomplete="off"></div>
<div class="field"><label for="oidc-claims">Claims the token must carry, one per line as <code>name=value</code> (<code>*</code> matches any run of characters)</label><textarea id="oidc-claims" name="claims" rows="3" required maxlength="4000" placeholder="repository=acme/api&#10;ref=refs/heads/main"></textarea></div>
<div class="row"><div class="field"><label for="oidc-project">Project</label><select id="oidc-project" name="project_id">${o.projects.map(
      (p) => html`<option value="${p.id}"${p.name === 'default' ? ' selected' : ''}>${p.name}</option>`,
    )}</select></div><div class="field"><label for="oidc-ttl">Key lifetime</label><select id="oidc-ttl" name="ttl_s">${TRUST_TTL_CHOICES.map(
      (c) => html`<option value="${c.value}"${c.value === 900 ? ' selected' : ''}>${c.label}</option>`,
    )}</select></div></div>
${scopeFieldset(o.scopes, o.role, o.orgName)}
<button class="primary" type="submit">Add trust</button>`,
    { className: 'after' },
  );
  return html`<section class="card" aria-labelledby="h-oidc"><h2 id="h-oidc">CI identity (OIDC trusts)</h2>${list}${form}</section>`;
}

/** What happens when a key of this organization is reported leaked (owners, admins). */
export function leakPolicySection(o: { orgId: string; csrf: string; policy: 'disable' | 'notify' }): Html {
  const option = (value: 'disable' | 'notify', label: string, help: string) =>
    html`<label class="check"><input type="radio" name="leak_policy" value="${value}"${o.policy === value ? ' checked' : ''}><span>${label}<small>${help}</small></span></label>`;
  return html`<section class="card" aria-labelledby="h-leaks"><h2 id="h-leaks">Leaked keys</h2>${postForm(
    `/orgs/${o.orgId}/leak-policy`,
    o.csrf,
    html`<fieldset><legend>When a key is reported leaked</legend>${option('disable', 'Disable it at once', 'and tell its owner (recommended)')}${option('notify', 'Only notify', 'the owner decides; the key keeps working')}</fieldset><button class="secondary" type="submit">Save</button>`,
  )}</section>`;
}
