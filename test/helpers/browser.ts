import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { expect } from 'vitest';

export const CHROMIUM_PATH = '/usr/bin/chromium';
export const chromiumAvailable = (): boolean => existsSync(CHROMIUM_PATH);

/** Launches the system's headless Chromium (never a downloaded one). */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** The newest sign-in code in a dev outbox directory (from the mail's subject). */
export function latestOutboxCode(outboxDir: string, to?: string): string | undefined {
  if (!existsSync(outboxDir)) return undefined;
  const files = readdirSync(outboxDir)
    .filter((f) => f.endsWith('.eml'))
    .sort();
  for (const f of files.reverse()) {
    const eml = readFileSync(join(outboxDir, f), 'utf8');
    if (to && !eml.includes(`To: ${to}`)) continue;
    const m = /^Subject: Your Breeze code: ([0-9A-Z]{8})\r?$/m.exec(eml);
    if (m?.[1]) return m[1];
  }
  return undefined;
}

export function countOutbox(outboxDir: string): number {
  return existsSync(outboxDir) ? readdirSync(outboxDir).filter((f) => f.endsWith('.eml')).length : 0;
}

/**
 * A browser simulated over `app.inject`: keeps cookies, posts forms the way a browser does
 * (urlencoded, with the page's hidden fields) and sends a same-origin `Origin` on POSTs.
 */
export class InjectBrowser {
  readonly cookies = new Map<string, string>();
  origin = 'http://127.0.0.1:4455';
  /** the client address the server sees */
  remoteAddress = '127.0.0.1';

  constructor(private readonly app: FastifyInstance) {}

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private keep(res: LightMyRequestResponse): void {
    const raw = res.headers['set-cookie'];
    const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
    for (const c of list) {
      const [pair] = c.split(';');
      const eq = pair?.indexOf('=') ?? -1;
      if (!pair || eq < 0) continue;
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (/Max-Age=0/i.test(c) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async get(url: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    const res = await this.app.inject({
      method: 'GET',
      url,
      remoteAddress: this.remoteAddress,
      headers: { cookie: this.cookieHeader(), ...headers },
    });
    this.keep(res);
    return res;
  }

  async post(
    url: string,
    form: Record<string, string | undefined> | URLSearchParams,
    headers: Record<string, string> = {},
  ): Promise<LightMyRequestResponse> {
    let body = new URLSearchParams();
    if (form instanceof URLSearchParams) body = form;
    else for (const [k, v] of Object.entries(form)) if (v !== undefined) body.set(k, v);
    const res = await this.app.inject({
      method: 'POST',
      url,
      remoteAddress: this.remoteAddress,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        cookie: this.cookieHeader(),
        origin: this.origin,
        'sec-fetch-site': 'same-origin',
        ...headers,
      },
      payload: body.toString(),
    });
    this.keep(res);
    return res;
  }

  /** Signs in through /login with the code read by `readCode`; returns nothing, keeps the cookie. */
  async signIn(email: string, readCode: () => string | undefined): Promise<void> {
    const page = await this.get('/login');
    const before = readCode();
    const res = await this.post('/login', { email, csrf: hiddenField(page.body, 'csrf'), next: '/device' });
    if (res.statusCode !== 200) throw new Error(`POST /login: ${res.statusCode}`);
    const code = await waitForNewCode(readCode, before);
    if (!code) throw new Error('no code was mailed');
    const done = await this.post('/login/code', {
      code,
      code_id: hiddenField(res.body, 'code_id'),
      email,
      csrf: hiddenField(res.body, 'csrf'),
      next: '/device',
    });
    if (done.statusCode !== 303) throw new Error(`POST /login/code: ${done.statusCode}`);
  }

  /**
   * Opens the authorize page for `userCode` the way a person does: types the code into the form of
   * `/device` (a link alone does not show Approve for a login from another device).
   */
  async typeCode(userCode: string): Promise<LightMyRequestResponse> {
    const entry = await this.get('/device');
    if (entry.statusCode !== 200) throw new Error(`code-entry page: ${entry.statusCode}`);
    return this.post('/device', { csrf: hiddenField(entry.body, 'csrf'), user_code: userCode });
  }

  /** Opens the authorize page for `userCode` (typing the code) and returns its CSRF token. */
  async authorizeCsrf(userCode: string): Promise<string> {
    const page = await this.typeCode(userCode);
    if (page.statusCode !== 200) throw new Error(`authorize page: ${page.statusCode}`);
    return hiddenField(page.body, 'csrf');
  }

  /** Types the code, then submits the page's Approve or Deny form as it is. */
  async decide(userCode: string, action: 'approve' | 'deny'): Promise<LightMyRequestResponse> {
    const page = await this.typeCode(userCode);
    if (page.statusCode !== 200) throw new Error(`authorize page: ${page.statusCode}`);
    return this.post(`/device/${action}`, formFields(page.body, `/device/${action}`));
  }
}

/**
 * What a browser would submit from the form posting to `action` (its first match), as it stands:
 * hidden and text inputs, checked boxes (repeated names), each select's selected option (else its
 * first). `set` replaces fields (an array: a repeated field; null: drops it).
 */
export function submission(
  page: string,
  action: string,
  set: Record<string, string | string[] | null> = {},
): URLSearchParams {
  const at = page.search(
    new RegExp(`<form method="post" action="${action.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`),
  );
  if (at < 0) throw new Error(`no form posting to ${action}`);
  const form = page.slice(at, page.indexOf('</form>', at));
  const unescapeHtml = (v: string) =>
    v
      .replaceAll('&amp;', '&')
      .replaceAll('&quot;', '"')
      .replaceAll('&#39;', "'")
      .replaceAll('&lt;', '<')
      .replaceAll('&gt;', '>');
  const out = new URLSearchParams();
  for (const m of form.matchAll(/<input ([^>]*)>/g)) {
    const attrs = m[1] ?? '';
    const name = /name="([^"]*)"/.exec(attrs)?.[1];
    const type = /type="([^"]*)"/.exec(attrs)?.[1] ?? 'text';
    const value = unescapeHtml(/value="([^"]*)"/.exec(attrs)?.[1] ?? '');
    if (!name || / disabled/.test(attrs)) continue;
    if (type === 'checkbox' || type === 'radio') {
      if (/ checked/.test(attrs)) out.append(name, value || 'on');
    } else out.append(name, value);
  }
  for (const m of form.matchAll(/<select [^>]*name="([^"]*)"[^>]*>([\s\S]*?)<\/select>/g)) {
    const options = [...(m[2] ?? '').matchAll(/<option value="([^"]*)"( selected)?/g)];
    const chosen = options.find((o) => o[2]) ?? options[0];
    if (m[1] && chosen) out.append(m[1], unescapeHtml(chosen[1] ?? ''));
  }
  for (const [k, v] of Object.entries(set)) {
    out.delete(k);
    if (v === null) continue;
    for (const x of Array.isArray(v) ? v : [v]) out.append(k, x);
  }
  return out;
}

/** The hidden fields of the POST form with this `action` in a page. */
export function formFields(page: string, action: string): Record<string, string> {
  const start = page.indexOf(`<form method="post" action="${action}">`);
  if (start < 0) throw new Error(`no form posting to ${action}`);
  const form = page.slice(start, page.indexOf('</form>', start));
  const fields: Record<string, string> = {};
  for (const m of form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields[m[1] ?? ''] = (m[2] ?? '')
      .replaceAll('&amp;', '&')
      .replaceAll('&quot;', '"')
      .replaceAll('&#39;', "'");
  }
  return fields;
}

/**
 * The code mail goes out after `POST /login` answers (in the background, so that the answer does
 * not depend on the mail): waits up to `timeoutMs` for a code other than `before`.
 */
export async function waitForNewCode(
  readCode: () => string | undefined,
  before: string | undefined,
  timeoutMs = 5000,
): Promise<string | undefined> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const code = readCode();
    if (code && code !== before) return code;
    if (Date.now() > until) return undefined;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The value of `<input type="hidden" name="...">` in a page. */
export function hiddenField(page: string, name: string): string {
  const m = new RegExp(`<input type="hidden" name="${name}" value="([^"]*)">`).exec(page);
  if (!m || m[1] === undefined) throw new Error(`no hidden field ${name}`);
  return m[1].replaceAll('&amp;', '&').replaceAll('&quot;', '"').replaceAll('&#39;', "'");
}

/**
 * Signs in a real browser `page` that stands on the sign-in page: types `email`, waits for a NEW
 * code mail in `outboxDir` (mail goes out in the background, and an earlier sign-in of the same
 * address left its code there), types it, and waits for the redirect to `/device`.
 */
export async function signInPage(
  page: Page,
  outboxDir: string,
  email: string,
  landing: RegExp = /\/device/,
): Promise<void> {
  // `/login?next=…` from a page that needs a session, plain `/login` from `/`
  await page.waitForURL(/\/login(\?|$)/);
  await page.fill('input[name=email]', email);
  const before = latestOutboxCode(outboxDir, email);
  await Promise.all([page.waitForURL(/\/login$/), page.click('button[type=submit]')]);
  await expect.poll(() => latestOutboxCode(outboxDir, email), { timeout: 10_000 }).not.toBe(before);
  await page.fill('input[name=code]', latestOutboxCode(outboxDir, email) ?? '');
  await Promise.all([page.waitForURL(landing), page.click('button[type=submit]')]);
}
