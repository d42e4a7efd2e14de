import { createHash } from 'node:crypto';

/**
 * Server-rendered pages: plain HTML, one stylesheet inline (allowed by its hash in the CSP), no
 * scripts, no external assets. Every dynamic value goes through `esc`.
 */

export function esc(value: string | number): string {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/** A fragment of already-escaped HTML. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

/** Tagged template: interpolated strings are escaped, `Html` fragments and arrays of them are not. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? '');
  });
  return new Html(out);
}

function render(v: unknown): string {
  if (v instanceof Html) return v.value;
  if (Array.isArray(v)) return v.map(render).join('');
  if (v === null || v === undefined || v === false) return '';
  return esc(String(v));
}

const CSS = `
:root{color-scheme:light dark;--bg:#f4f6fb;--card:#fff;--text:#111827;--muted:#5b6475;--line:#e4e7ee;
--accent:#2563eb;--accent-hover:#1d4ed8;--accent-ink:#fff;--soft:#eef3ff;--danger:#b42318;--danger-soft:#fef3f2;
--ok:#067647;--ok-soft:#ecfdf3;--warn:#b54708;--warn-soft:#fffaeb;--shadow:0 1px 2px rgba(16,24,40,.06),0 12px 32px rgba(16,24,40,.08)}
@media (prefers-color-scheme:dark){:root{--bg:#0b1020;--card:#131a2c;--text:#e7eaf3;--muted:#9aa3b5;--line:#26304a;
--accent:#5b8cff;--accent-hover:#7aa2ff;--accent-ink:#0b1020;--soft:#1a2440;--danger:#ff8a80;--danger-soft:#2a1618;
--ok:#5fd39a;--ok-soft:#11261d;--warn:#f5b86b;--warn-soft:#2a2013;--shadow:0 1px 2px rgba(0,0,0,.4),0 12px 32px rgba(0,0,0,.35)}}
*{box-sizing:border-box}
html,body{margin:0;padding:0}
body{min-height:100vh;display:flex;flex-direction:column;align-items:center;justify-content:center;padding:32px 16px;
background:radial-gradient(1200px 600px at 50% -10%,var(--soft),var(--bg));color:var(--text);
font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;-webkit-font-smoothing:antialiased}
.brand{display:flex;align-items:center;gap:10px;margin-bottom:20px;font-weight:650;font-size:18px;letter-spacing:-.01em;color:var(--text)}
.brand svg{display:block}
.card{width:100%;max-width:440px;background:var(--card);border:1px solid var(--line);border-radius:16px;padding:32px;box-shadow:var(--shadow)}
h1{font-size:22px;line-height:1.3;margin:0 0 8px;letter-spacing:-.015em}
p{margin:0 0 16px;color:var(--muted)}
p strong,li strong{color:var(--text)}
label{display:block;font-weight:600;font-size:14px;margin:0 0 6px}
input[type=email],input[type=text]{width:100%;font:inherit;padding:11px 13px;border:1px solid var(--line);border-radius:10px;
background:var(--card);color:var(--text);outline:none;transition:border-color .15s,box-shadow .15s}
input:focus{border-color:var(--accent);box-shadow:0 0 0 4px color-mix(in srgb,var(--accent) 18%,transparent)}
input.code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:22px;letter-spacing:.18em;text-align:center;text-transform:uppercase}
.field{margin-bottom:18px}
button,.button{display:inline-flex;align-items:center;justify-content:center;gap:8px;width:100%;font:inherit;font-weight:600;
padding:11px 16px;border-radius:10px;border:1px solid transparent;cursor:pointer;text-decoration:none;transition:background .15s,border-color .15s}
.primary{background:var(--accent);color:var(--accent-ink)}
.primary:hover{background:var(--accent-hover)}
.secondary{background:transparent;color:var(--text);border-color:var(--line)}
.secondary:hover{border-color:var(--muted)}
button:focus-visible,.button:focus-visible,a:focus-visible{outline:3px solid color-mix(in srgb,var(--accent) 45%,transparent);outline-offset:2px}
.actions{display:grid;grid-template-columns:1fr 1fr;gap:12px;margin-top:24px}
.actions form{margin:0}
.usercode{display:flex;justify-content:center;gap:10px;margin:8px 0 6px;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
font-size:30px;font-weight:650;letter-spacing:.14em}
.usercode span{background:var(--soft);border:1px solid var(--line);border-radius:10px;padding:6px 12px}
.usercode .dash{background:none;border:0;padding:6px 0;color:var(--muted)}
.hint{font-size:13px;text-align:center;margin-bottom:20px}
form+.hint{margin:16px 0 0}
dl{display:grid;grid-template-columns:auto 1fr;gap:10px 16px;margin:0;padding:16px 0 0;border-top:1px solid var(--line);font-size:14px}
dt{color:var(--muted)}
dd{margin:0;font-weight:550;word-break:break-word}
dd small{display:block;color:var(--muted);font-weight:400}
.chips{display:flex;flex-wrap:wrap;gap:6px}
.chip{display:inline-block;font-size:12px;font-weight:650;padding:2px 9px;border-radius:999px;background:var(--soft);color:var(--accent);border:1px solid var(--line)}
.chip.admin{background:var(--warn-soft);color:var(--warn)}
.note{font-size:13px;padding:10px 12px;border-radius:10px;background:var(--soft);color:var(--muted);margin:0 0 18px}
.error{font-size:14px;padding:10px 12px;border-radius:10px;background:var(--danger-soft);color:var(--danger);margin:0 0 18px}
.result{text-align:center}
.result .icon{width:56px;height:56px;border-radius:50%;display:flex;align-items:center;justify-content:center;margin:0 auto 16px}
.result .icon.ok{background:var(--ok-soft);color:var(--ok)}
.result .icon.bad{background:var(--danger-soft);color:var(--danger)}
.result .icon.warn{background:var(--warn-soft);color:var(--warn)}
.who{display:flex;justify-content:space-between;align-items:center;gap:12px;font-size:13px;color:var(--muted);margin-top:20px;padding-top:16px;border-top:1px solid var(--line)}
.who form{margin:0}
.link{background:none;border:0;padding:0;width:auto;color:var(--accent);font-weight:500;font-size:13px;cursor:pointer;text-decoration:none}
.link:hover{text-decoration:underline}
a{color:var(--accent)}
footer{margin-top:18px;font-size:12px;color:var(--muted)}
kbd{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px;background:var(--soft);border:1px solid var(--line);border-radius:6px;padding:1px 6px}
`
  .replace(/\n/g, '')
  .trim();

const CSS_HASH = `'sha256-${createHash('sha256').update(CSS).digest('base64')}'`;

/** The page's Content-Security-Policy; `formTargets` are extra origins a form may end up at (loopback). */
export function pageCsp(formTargets: string[] = []): string {
  return [
    "default-src 'none'",
    `style-src ${CSS_HASH}`,
    "img-src 'self' data:",
    `form-action 'self'${formTargets.map((t) => ` ${t}`).join('')}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}

const LOGO = html`<svg width="28" height="28" viewBox="0 0 32 32" aria-hidden="true"><rect width="32" height="32" rx="8" fill="#2563eb"/><path d="M6 12h13a3.5 3.5 0 1 0-3.5-3.5M6 17h18a3.5 3.5 0 1 1-3.5 3.5M6 22h9" fill="none" stroke="#fff" stroke-width="2.4" stroke-linecap="round"/></svg>`;

export function layout(title: string, body: Html): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<link rel="icon" href="data:,">
<title>${title} · Breeze</title>
<style>${new Html(CSS)}</style>
</head>
<body>
<div class="brand">${LOGO}<span>Breeze</span></div>
<main class="card">
${body}
</main>
<footer>Breeze · API keys for developers</footer>
</body>
</html>
`.value;
}

const ICONS = {
  ok: html`<svg width="28" height="28" viewBox="0 0 24 24" aria-hidden="true"><path d="M5 12.5l4.5 4.5L19 7.5" fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round"/></svg>`,
  bad: html`<svg width="28" height="28" viewBox="0 0 24 24" aria-hidden="true"><path d="M7 7l10 10M17 7L7 17" fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round"/></svg>`,
  warn: html`<svg width="28" height="28" viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="8.5" fill="none" stroke="currentColor" stroke-width="2.2"/><path d="M12 7.5V12.5l3 2" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"/></svg>`,
};

export function resultPage(kind: 'ok' | 'bad' | 'warn', title: string, message: Html | string, extra?: Html) {
  return layout(
    title,
    html`<div class="result"><div class="icon ${kind}">${ICONS[kind]}</div><h1>${title}</h1><p>${message}</p>${extra ?? ''}</div>`,
  );
}

function hidden(fields: Record<string, string>): Html {
  return html`${Object.entries(fields).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}`;
}

export function emailPage(o: {
  csrf: string;
  next: string;
  email?: string;
  error?: string;
  context?: string;
}) {
  return layout(
    'Sign in',
    html`<h1>Sign in to Breeze</h1>
<p>${o.context ?? 'Enter your email and we will send you a one-time code.'}</p>
${o.error ? html`<div class="error" role="alert">${o.error}</div>` : ''}
<form method="post" action="/login">
${hidden({ csrf: o.csrf, next: o.next })}
<div class="field"><label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="email" required autofocus maxlength="254" placeholder="you@example.com" value="${o.email ?? ''}"></div>
<button class="primary" type="submit">Email me a code</button>
</form>`,
  );
}

export function codePage(o: {
  csrf: string;
  next: string;
  codeId: string;
  email: string;
  embedded: boolean;
  error?: string;
}) {
  return layout(
    'Check your email',
    html`<h1>Check your email</h1>
<p>We sent an 8-character code to <strong>${o.email}</strong>. It works once and expires in 10 minutes.</p>
${o.embedded ? html`<div class="note">Running <kbd>breeze</kbd> on this computer? The code is also shown in your terminal.</div>` : ''}
${o.error ? html`<div class="error" role="alert">${o.error}</div>` : ''}
<form method="post" action="/login/code">
${hidden({ csrf: o.csrf, next: o.next, code_id: o.codeId, email: o.email })}
<div class="field"><label for="code">Code</label>
<input id="code" name="code" class="code" type="text" inputmode="text" autocomplete="one-time-code" autocapitalize="characters" spellcheck="false" required autofocus maxlength="12" placeholder="XXXXXXXX"></div>
<button class="primary" type="submit">Sign in</button>
</form>
<p class="hint"><a href="/login?next=${encodeURIComponent(o.next)}">Use a different email</a></p>`,
  );
}

function signedInAs(email: string, csrf: string): Html {
  return html`<div class="who"><span>Signed in as <strong>${email}</strong></span>
<form method="post" action="/logout">${hidden({ csrf })}<button class="link" type="submit">Not you? Sign out</button></form></div>`;
}

export function typeCodePage(o: { email: string; csrf: string; error?: string; value?: string }) {
  return layout(
    'Connect the CLI',
    html`<h1>Connect the Breeze CLI</h1>
<p>Enter the code shown in your terminal by <kbd>breeze login</kbd>.</p>
${o.error ? html`<div class="error" role="alert">${o.error}</div>` : ''}
<form method="get" action="/device">
<div class="field"><label for="user_code">Code</label>
<input id="user_code" name="user_code" class="code" type="text" autocomplete="off" autocapitalize="characters" spellcheck="false" required autofocus maxlength="12" placeholder="XXXX-XXXX" value="${o.value ?? ''}"></div>
<button class="primary" type="submit">Continue</button>
</form>
${signedInAs(o.email, o.csrf)}`,
  );
}

const SCOPE_TEXT: Record<string, string> = {
  read: 'read your account and keys',
  write: 'make changes',
  admin: 'create, rotate and delete all your API keys',
};

export interface AuthorizeView {
  userCode: string;
  clientName: string;
  hostname: string;
  ip: string;
  createdAt: Date;
  now: Date;
  expiresAt: Date;
  scopes: string[];
  keyName: string;
  email: string;
  csrf: string;
  /** the approver's projects; a picker is shown when there is more than one (the first is preselected) */
  projects?: { id: string; label: string }[];
}

function formatTime(d: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()}, ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} UTC`;
}

function ago(from: Date, now: Date): string {
  const s = Math.max(0, Math.round((now.getTime() - from.getTime()) / 1000));
  if (s < 10) return 'just now';
  if (s < 60) return `${s} seconds ago`;
  const m = Math.round(s / 60);
  return m === 1 ? '1 minute ago' : `${m} minutes ago`;
}

export function authorizePage(v: AuthorizeView) {
  const [a, b] = [v.userCode.slice(0, 4), v.userCode.slice(5)];
  const minutesLeft = Math.max(1, Math.ceil((v.expiresAt.getTime() - v.now.getTime()) / 60_000));
  const picker =
    v.projects && v.projects.length > 1
      ? html`<label for="project_id">Project</label> <select id="project_id" name="project_id">${v.projects.map((p) => html`<option value="${p.id}">${p.label}</option>`)}</select> `
      : '';
  const decision = (action: 'approve' | 'deny', label: string, cls: string) =>
    html`<form method="post" action="/device/${action}">${hidden({ csrf: v.csrf, user_code: v.userCode })}${action === 'approve' ? picker : ''}<button class="${cls}" type="submit">${label}</button></form>`;
  return layout(
    'Authorize the CLI',
    html`<h1>Authorize the Breeze CLI?</h1>
<p><strong>${v.clientName}</strong> on <strong>${v.hostname}</strong> is asking for an API key for your account.</p>
<div class="usercode" aria-label="Code ${v.userCode}"><span>${a}</span><span class="dash">–</span><span>${b}</span></div>
<p class="hint">Check that your terminal shows this same code. Expires in ${minutesLeft} min.</p>
<dl>
<dt>Application</dt><dd>${v.clientName}</dd>
<dt>Computer</dt><dd>${v.hostname}</dd>
<dt>IP address</dt><dd>${v.ip}</dd>
<dt>Requested</dt><dd>${formatTime(v.createdAt)}<small>${ago(v.createdAt, v.now)}</small></dd>
<dt>Key name</dt><dd>${v.keyName}</dd>
<dt>Access</dt><dd><div class="chips">${v.scopes.map((s) => html`<span class="chip${s === 'admin' ? ' admin' : ''}">${s}</span>`)}</div>
<small>${v.scopes.map((s) => SCOPE_TEXT[s] ?? s).join(', ')}</small></dd>
</dl>
<div class="actions">${decision('deny', 'Deny', 'secondary')}${decision('approve', 'Approve', 'primary')}</div>
${signedInAs(v.email, v.csrf)}`,
  );
}

export function errorPage(status: number, title: string, message: string) {
  return resultPage(
    status >= 500 ? 'bad' : 'warn',
    title,
    message,
    html`<a class="button secondary" href="/device">Start over</a>`,
  );
}
