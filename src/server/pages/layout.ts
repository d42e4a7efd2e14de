import { createHash } from 'node:crypto';
import type { OrgOfUser } from '../store/orgs.js';
import { Html, html } from './views.js';

/**
 * The dashboard's shared layout: header (brand, navigation, organization switcher, who is signed
 * in), flash message, main column. One inline stylesheet allowed by its hash, one same-origin
 * script (`/assets/dashboard.js`, an enhancement only: every page works without it). Dark mode
 * follows the system (prefers-color-scheme). Every dynamic value goes through `html` (views.ts).
 */

const CSS = `
:root{color-scheme:light dark;--bg:#f5f7fb;--card:#fff;--text:#111827;--muted:#566074;--line:#e3e7ef;
--accent:#1d4ed8;--accent-hover:#1e40af;--accent-ink:#fff;--soft:#eef3ff;--danger:#b42318;--danger-soft:#fef3f2;
--ok:#067647;--ok-soft:#ecfdf3;--warn:#93370d;--warn-soft:#fffaeb}
@media (prefers-color-scheme:dark){:root{--bg:#0b1020;--card:#131a2c;--text:#e7eaf3;--muted:#a3acbe;--line:#2a3552;
--accent:#7aa2ff;--accent-hover:#9ab8ff;--accent-ink:#0b1020;--soft:#1a2440;--danger:#ff9b93;--danger-soft:#2a1618;
--ok:#6fe0a8;--ok-soft:#11261d;--warn:#f7c27f;--warn-soft:#2a2013}}
*{box-sizing:border-box}
html,body{margin:0;padding:0}
body{background:var(--bg);color:var(--text);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;-webkit-font-smoothing:antialiased}
a{color:var(--accent)}
.skip{position:absolute;left:-999px;top:8px;background:var(--card);padding:8px 12px;border-radius:8px;z-index:2}
.skip:focus{left:8px}
header.top{background:var(--card);border-bottom:1px solid var(--line)}
.bar{max-width:1120px;margin:0 auto;padding:10px 20px;display:flex;flex-wrap:wrap;align-items:center;gap:12px 20px}
.brand{display:flex;align-items:center;gap:8px;font-weight:650;font-size:17px;color:var(--text);text-decoration:none}
nav.main ul{display:flex;gap:4px;list-style:none;margin:0;padding:0}
nav.main a{display:block;padding:6px 12px;border-radius:8px;color:var(--muted);text-decoration:none;font-weight:550}
nav.main a:hover{background:var(--soft);color:var(--text)}
nav.main a[aria-current=page]{background:var(--soft);color:var(--accent)}
.spacer{flex:1}
.switcher{display:flex;align-items:center;gap:6px;margin:0}
.switcher label{font-size:13px;color:var(--muted);margin:0;font-weight:500}
.who{display:flex;align-items:center;gap:10px;font-size:13px;color:var(--muted)}
.who form{margin:0}
main{max-width:1120px;margin:0 auto;padding:24px 20px 48px}
h1{font-size:24px;line-height:1.3;margin:0 0 6px;letter-spacing:-.015em}
h2{font-size:17px;margin:0 0 10px}
p{margin:0 0 14px}
.muted{color:var(--muted)}
.head{display:flex;flex-wrap:wrap;align-items:flex-end;justify-content:space-between;gap:12px;margin-bottom:18px}
section.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:20px;margin:0 0 18px}
table{width:100%;border-collapse:collapse;font-size:14px}
th,td{text-align:left;padding:9px 10px;border-bottom:1px solid var(--line);vertical-align:middle}
th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);font-weight:650}
tbody tr:last-child td{border-bottom:0}
th.num,td.num{text-align:right;font-variant-numeric:tabular-nums}
.chart{display:block;width:100%;height:160px;margin:0 0 8px}
.chart .bar{fill:var(--accent)}.chart .bar-rejected{fill:var(--danger)}.chart .axis{stroke:var(--line)}
.chart text{fill:var(--muted);font-size:11px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;background:var(--accent);vertical-align:baseline}
.swatch.rejected{background:var(--danger);margin-left:8px}
.tabs{display:flex;gap:6px;flex-wrap:wrap}.tabs a[aria-current]{background:var(--soft);color:var(--accent)}
td.details{max-width:360px;overflow-wrap:anywhere;font-size:13px}
details summary{cursor:pointer;font-weight:550;margin:4px 0 8px}
.scroll{overflow-x:auto}
code,kbd,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
kbd{background:var(--soft);border:1px solid var(--line);border-radius:6px;padding:1px 6px}
pre{background:var(--soft);border:1px solid var(--line);border-radius:8px;padding:10px 12px;overflow-x:auto;margin:0 0 12px}
label{display:block;font-weight:600;font-size:14px;margin:0 0 6px}
input[type=text],input[type=email],select{font:inherit;padding:8px 10px;border:1px solid var(--line);border-radius:8px;background:var(--card);color:var(--text);max-width:100%}
input[type=text],input[type=email]{width:100%}
fieldset{border:1px solid var(--line);border-radius:10px;padding:10px 14px;margin:0 0 14px}
legend{font-weight:600;font-size:14px;padding:0 4px}
.check{display:flex;align-items:flex-start;gap:8px;font-weight:500;margin:4px 0}
.check small{display:block;color:var(--muted);font-weight:400}
.field{margin-bottom:14px;max-width:520px}
.row{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-end}
.row .field{margin-bottom:0}
button,.button{display:inline-flex;align-items:center;justify-content:center;gap:6px;font:inherit;font-weight:600;font-size:14px;
padding:8px 14px;border-radius:8px;border:1px solid transparent;cursor:pointer;text-decoration:none;white-space:nowrap}
.primary{background:var(--accent);color:var(--accent-ink)}
.primary:hover{background:var(--accent-hover)}
.secondary{background:var(--card);color:var(--text);border-color:var(--line)}
.secondary:hover{border-color:var(--muted)}
.danger{background:var(--danger);color:#fff}
.link{background:none;border:0;padding:0;color:var(--accent);font-weight:500;font-size:13px}
button:focus-visible,.button:focus-visible,a:focus-visible,input:focus-visible,select:focus-visible,summary:focus-visible{outline:3px solid color-mix(in srgb,var(--accent) 55%,transparent);outline-offset:2px}
.inline{display:inline;margin:0}
.actions{display:flex;flex-wrap:wrap;gap:8px;align-items:center}
.item{border:1px solid var(--line);border-radius:10px;padding:12px 14px;margin:0 0 10px}
.spread{justify-content:space-between;align-items:flex-start}
.columns{columns:2 220px;margin-top:6px}
h3{font-size:15px;margin:18px 0 10px}
textarea{font:inherit;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px;width:100%;padding:8px 10px;border:1px solid var(--line);border-radius:8px;background:var(--card);color:var(--text)}
.chip{display:inline-block;font-size:12px;font-weight:650;padding:1px 8px;border-radius:999px;background:var(--soft);color:var(--accent);border:1px solid var(--line);margin:0 4px 2px 0}
.status{display:inline-block;font-size:12px;font-weight:650;padding:1px 8px;border-radius:999px;border:1px solid currentColor}
.status.active{color:var(--ok);background:var(--ok-soft)}
.status.expiring{color:var(--warn);background:var(--warn-soft)}
.status.expired,.status.disabled,.status.not-member{color:var(--danger);background:var(--danger-soft)}
.flash{padding:10px 14px;border-radius:10px;margin:0 0 18px;border:1px solid currentColor;font-weight:550}
.flash.ok{background:var(--ok-soft);color:var(--ok)}
.flash.error{background:var(--danger-soft);color:var(--danger)}
.warning{padding:10px 14px;border-radius:10px;background:var(--warn-soft);color:var(--warn);border:1px solid currentColor;margin:0 0 14px}
.secret{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:0 0 14px}
.secret output{flex:1;min-width:260px;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:14px;padding:10px 12px;border-radius:8px;background:var(--soft);border:1px solid var(--line);word-break:break-all}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:8px 18px;margin:0;font-size:14px}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0;word-break:break-word}
.empty{text-align:center;padding:28px 12px}
.pager{display:flex;gap:10px;justify-content:flex-end;margin-top:12px}
.badge{font-size:12px;font-weight:650;color:var(--ok);background:var(--ok-soft);padding:1px 8px;border-radius:999px;margin-left:6px}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:18px}
footer{max-width:1120px;margin:0 auto;padding:0 20px 24px;font-size:12px;color:var(--muted)}
[hidden]{display:none!important}
.sr-only{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);white-space:nowrap;border:0}
.after{margin-top:14px}
`
  .replace(/\n/g, '')
  .trim();

const CSS_HASH = `'sha256-${createHash('sha256').update(CSS).digest('base64')}'`;

/** The script the dashboard loads (same origin, see assets.ts). */
export const SCRIPT_PATH = '/assets/dashboard.js';

/** The dashboard's Content-Security-Policy: the login pages' rules plus the one same-origin script. */
export function dashboardCsp(): string {
  return [
    "default-src 'none'",
    `style-src ${CSS_HASH}`,
    "script-src 'self'",
    "img-src 'self' data:",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}

const LOGO = html`<svg width="26" height="26" viewBox="0 0 32 32" aria-hidden="true"><rect width="32" height="32" rx="8" fill="#2563eb"/><path d="M6 12h13a3.5 3.5 0 1 0-3.5-3.5M6 17h18a3.5 3.5 0 1 1-3.5 3.5M6 22h9" fill="none" stroke="#fff" stroke-width="2.4" stroke-linecap="round"/></svg>`;

export type NavItem = 'keys' | 'org' | 'account' | 'audit';

export interface Flash {
  kind: 'ok' | 'error';
  text: string;
}

/** What every dashboard page knows about who is looking. */
export interface Viewer {
  email: string;
  csrf: string;
  orgs: OrgOfUser[];
  /** the organization the page is about (switcher preselection, "Organization" link) */
  orgId: string;
  flash?: Flash | null;
}

/** The hidden CSRF field of every POST form. */
export function csrfField(csrf: string): Html {
  return html`<input type="hidden" name="csrf" value="${csrf}">`;
}

/** A POST form (CSRF token included); `confirm` adds a JS confirm dialog (the action works without it). */
export function postForm(
  action: string,
  csrf: string,
  body: Html | string,
  o: { className?: string; confirm?: string; label?: string } = {},
): Html {
  return html`<form method="post" action="${action}"${o.className ? html` class="${o.className}"` : ''}${
    o.confirm ? html` data-confirm="${o.confirm}"` : ''
  }${o.label ? html` aria-label="${o.label}"` : ''}>${csrfField(csrf)}${body}</form>`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `1 Dec 2026, 03:04 UTC` */
export function exactTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}, ${p(d.getUTCHours())}:${p(d.getUTCMinutes())} UTC`;
}

/** "3 hours ago", "in 29 days": the coarse unit people read. */
export function relativeTime(d: Date, now: Date): string {
  const diff = d.getTime() - now.getTime();
  const s = Math.round(Math.abs(diff) / 1000);
  const units: [number, string][] = [
    [365 * 86400, 'year'],
    [30 * 86400, 'month'],
    [86400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
  ];
  let text = 'just now';
  if (s >= 45) {
    for (const [size, name] of units) {
      if (s >= size) {
        const n = Math.round(s / size);
        text = `${n} ${name}${n === 1 ? '' : 's'}`;
        break;
      }
    }
    if (text === 'just now') text = `${s} seconds`;
    text = diff < 0 ? `${text} ago` : `in ${text}`;
  }
  return text;
}

/** A time shown relative, with the exact time on hover and in `datetime`; `none` when absent. */
export function timeTag(iso: string | null | undefined, now: Date, none = '—'): Html {
  if (!iso) return html`<span class="muted">${none}</span>`;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return html`<span class="muted">${none}</span>`;
  return html`<time datetime="${d.toISOString()}" title="${exactTime(d)}">${relativeTime(d, now)}</time>`;
}

function navLink(href: string, label: string, active: boolean): Html {
  return html`<li><a href="${href}"${active ? html` aria-current="page"` : ''}>${label}</a></li>`;
}

/** The whole page around `body`. */
export function dashboardLayout(o: { title: string; viewer: Viewer; active?: NavItem; body: Html }): string {
  const v = o.viewer;
  const switcher =
    v.orgs.length > 1
      ? html`<form class="switcher" method="get" action="/keys" data-autosubmit><label for="org-switch">Organization</label>
<select id="org-switch" name="org_id">${v.orgs.map(
          (org) =>
            html`<option value="${org.id}"${org.id === v.orgId ? ' selected' : ''}>${org.name}</option>`,
        )}</select><button class="secondary" type="submit" data-js-hide>Switch</button></form>`
      : '';
  const flash = v.flash
    ? html`<div class="flash ${v.flash.kind}" role="${v.flash.kind === 'error' ? 'alert' : 'status'}">${v.flash.text}</div>`
    : '';
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:,">
<title>${o.title} · Breeze</title>
<style>${new Html(CSS)}</style>
<script src="${SCRIPT_PATH}" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top"><div class="bar">
<a class="brand" href="/keys">${LOGO}<span>Breeze</span></a>
<nav class="main" aria-label="Main"><ul>
${navLink(`/keys?org_id=${encodeURIComponent(v.orgId)}`, 'API keys', o.active === 'keys')}
${navLink(`/orgs/${encodeURIComponent(v.orgId)}`, 'Organization', o.active === 'org')}
${navLink(`/audit?org_id=${encodeURIComponent(v.orgId)}`, 'Audit log', o.active === 'audit')}
${navLink('/account', 'Account', o.active === 'account')}
</ul></nav>
<span class="spacer"></span>
${switcher}
<div class="who"><span>${v.email}</span>${postForm('/logout', v.csrf, html`<button class="link" type="submit">Sign out</button>`, { className: 'inline' })}</div>
</div></header>
<main id="main" tabindex="-1">
${flash}
${o.body}
</main>
<footer>Breeze · API keys for developers</footer>
</body>
</html>
`.value;
}
