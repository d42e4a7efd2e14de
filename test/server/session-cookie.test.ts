/**
 * The browser session cookie (issue 10, item 2): the JSON API takes it only from a same-origin
 * browser request; it lives at most 24 h on plain http (1 h on the embedded server); it carries the
 * `__Host-` prefix over https; and it is bound to the server that issued it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ServerConfig } from '../../src/server/config.js';
import type { MailMessage } from '../../src/server/mail/mailer.js';
import { OutboxMailer } from '../../src/server/mail/outbox.js';
import { type RunningServer, startServer } from '../../src/server/serve.js';
import { hiddenField, InjectBrowser, latestOutboxCode, waitForNewCode } from '../helpers/browser.js';
import { startTestServer } from '../helpers/server.js';

const HOUR_S = 3600;

/** A server with a settable clock and a mail list; `signIn` returns the browser and its Set-Cookie. */
async function serverWith(config: Partial<ServerConfig>) {
  const mails: MailMessage[] = [];
  const outbox = mkdtempSync(join(tmpdir(), 'breeze-outbox-'));
  let now = Date.parse('2026-06-01T08:00:00Z');
  const server = await startTestServer({
    clock: () => new Date(now),
    mailer: new OutboxMailer(outbox, undefined, (m) => mails.push(m)),
    config: { publicUrl: 'http://127.0.0.1:4455', ...config },
  });
  return {
    server,
    advance(ms: number) {
      now += ms;
    },
    async signIn(email: string, origin = 'http://127.0.0.1:4455') {
      const b = new InjectBrowser(server.app);
      b.origin = origin;
      const readCode = () => mails.findLast((m) => m.to === email)?.subject.replace('Your Breeze code: ', '');
      const before = readCode();
      const page = await b.get('/login');
      const sent = await b.post('/login', { email, csrf: hiddenField(page.body, 'csrf'), next: '/device' });
      const code = (await waitForNewCode(readCode, before)) ?? '';
      const done = await b.post('/login/code', {
        code,
        code_id: hiddenField(sent.body, 'code_id'),
        csrf: hiddenField(sent.body, 'csrf'),
        next: '/device',
      });
      expect(done.statusCode).toBe(303);
      const setCookie = ([] as string[]).concat(done.headers['set-cookie'] ?? []).join('\n');
      return { browser: b, setCookie };
    },
    async close() {
      await server.close();
      rmSync(outbox, { recursive: true, force: true });
    },
  };
}

type Harness = Awaited<ReturnType<typeof serverWith>>;

function maxAge(setCookie: string, name: string): number {
  const line = setCookie.split('\n').find((c) => c.startsWith(`${name}=`)) ?? '';
  const m = /Max-Age=(\d+)/.exec(line);
  if (!m?.[1]) throw new Error(`no Max-Age on ${name}: ${setCookie}`);
  return Number(m[1]);
}

describe('the JSON API accepts the session cookie only from a same-origin browser', () => {
  let h: Harness;
  let cookie: string;
  beforeAll(async () => {
    h = await serverWith({});
    cookie = (await h.signIn('api@example.com')).browser.cookieHeader();
  });
  afterAll(() => h.close());

  const me = (headers: Record<string, string>) =>
    h.server.app.inject({ url: '/v1/me', headers: { cookie, ...headers } });

  it('a cookie alone (curl, or a process on another port that received it) is 401', async () => {
    const res = await me({});
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('AUTH_REQUIRED');
    const write = await h.server.app.inject({
      method: 'POST',
      url: '/v1/api-keys',
      headers: { cookie },
      payload: { name: 'planted' },
    });
    expect(write.statusCode).toBe(401);
  });

  it('Sec-Fetch-Site: same-origin, or an Origin equal to the server’s, is 200', async () => {
    const viaFetchMetadata = await me({ 'sec-fetch-site': 'same-origin' });
    expect(viaFetchMetadata.statusCode).toBe(200);
    expect(viaFetchMetadata.json()).toMatchObject({
      user: { email: 'api@example.com' },
      auth: { type: 'session' },
    });
    expect((await me({ origin: 'http://127.0.0.1:4455' })).statusCode).toBe(200);
  });

  it('another port of the same host, another site, or a typed URL is 401', async () => {
    const refused: Record<string, string>[] = [
      { origin: 'http://127.0.0.1:6666' },
      { 'sec-fetch-site': 'same-site', origin: 'http://127.0.0.1:6666' },
      { 'sec-fetch-site': 'same-site' },
      { 'sec-fetch-site': 'cross-site', origin: 'http://evil.example' },
      { 'sec-fetch-site': 'none' },
      { origin: 'null' },
      // contradictory: a browser never sends these together
      { 'sec-fetch-site': 'same-origin', origin: 'http://127.0.0.1:6666' },
    ];
    for (const headers of refused) {
      expect((await me(headers)).statusCode, JSON.stringify(headers)).toBe(401);
    }
  });
});

describe('session lifetime', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  async function stillSignedIn(browser: InjectBrowser): Promise<boolean> {
    const page = await browser.get('/device');
    return page.statusCode === 200;
  }

  it('on a plain-http server: Max-Age <= 24 h, and the server refuses the session after 24 h', async () => {
    h = await serverWith({ publicUrl: 'http://breeze.internal:4455' });
    const { browser, setCookie } = await h.signIn('http@example.com', 'http://breeze.internal:4455');
    const age = maxAge(setCookie, 'breeze_session');
    expect(age).toBeGreaterThan(0);
    expect(age).toBeLessThanOrEqual(24 * HOUR_S);
    h.advance(24 * HOUR_S * 1000 - 60_000);
    expect(await stillSignedIn(browser)).toBe(true);
    h.advance(61_000);
    expect(await stillSignedIn(browser)).toBe(false);
  });

  it('on the embedded server: Max-Age <= 1 h, and the server refuses the session after 1 h', async () => {
    h = await serverWith({ embedded: true });
    const { browser, setCookie } = await h.signIn('embedded@example.com');
    const age = maxAge(setCookie, 'breeze_session');
    expect(age).toBeGreaterThan(0);
    expect(age).toBeLessThanOrEqual(HOUR_S);
    h.advance(HOUR_S * 1000 + 1000);
    expect(await stillSignedIn(browser)).toBe(false);
  });

  it('over https: the cookie is __Host-breeze_session (Secure, Path=/), and the bare name is not read', async () => {
    h = await serverWith({ publicUrl: 'https://breeze.example' });
    const { browser, setCookie } = await h.signIn('tls@example.com', 'https://breeze.example');
    expect(setCookie).toMatch(
      /^__Host-breeze_session=[A-Za-z0-9_-]{43}; Path=\/; .*HttpOnly; SameSite=Lax; Secure$/m,
    );
    expect(setCookie).not.toMatch(/^breeze_session=/m);
    const token = browser.cookies.get('__Host-breeze_session') ?? '';
    const headers = { 'sec-fetch-site': 'same-origin' };
    const ok = await h.server.app.inject({
      url: '/v1/me',
      headers: { ...headers, cookie: `__Host-breeze_session=${token}` },
    });
    expect(ok.statusCode).toBe(200);
    // a cookie any http page of the host could have planted, under the unprefixed name
    const planted = await h.server.app.inject({
      url: '/v1/me',
      headers: { ...headers, cookie: `breeze_session=${token}` },
    });
    expect(planted.statusCode).toBe(401);
  });
});

describe('a session is bound to the server that issued it', () => {
  const dirs: string[] = [];
  const running: RunningServer[] = [];
  afterAll(async () => {
    for (const s of running) await s.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function serve(dataDir: string): Promise<RunningServer> {
    const s = await startServer({ host: '127.0.0.1', port: 0, dataDir, logger: false });
    running.push(s);
    return s;
  }

  /** Signs in on `s` (a real server) and returns the session cookie it set. */
  async function signInOn(s: RunningServer, dataDir: string, email: string): Promise<string> {
    const b = new InjectBrowser(s.app);
    b.origin = s.url;
    const readCode = () => latestOutboxCode(join(dataDir, 'outbox'), email);
    const before = readCode();
    const page = await b.get('/login');
    const sent = await b.post('/login', { email, csrf: hiddenField(page.body, 'csrf'), next: '/device' });
    const done = await b.post('/login/code', {
      code: (await waitForNewCode(readCode, before)) ?? '',
      code_id: hiddenField(sent.body, 'code_id'),
      csrf: hiddenField(sent.body, 'csrf'),
    });
    expect(done.statusCode).toBe(303);
    return `breeze_session=${b.cookies.get('breeze_session')}`;
  }

  /** What a browser page of `s` would get back for its own cookie jar (127.0.0.1 cookies go to every port). */
  async function asBrowserOf(s: RunningServer, cookie: string) {
    const me = await fetch(`${s.url}/v1/me`, {
      headers: { cookie, 'sec-fetch-site': 'same-origin', origin: s.url },
    });
    const page = await fetch(`${s.url}/device`, { headers: { cookie }, redirect: 'manual' });
    return { me: me.status, device: page.status, location: page.headers.get('location') };
  }

  it('a cookie from `breeze serve` is refused by the embedded server on the same data dir, and vice versa', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'breeze-shared-'));
    dirs.push(dataDir);
    const x = await serve(dataDir);
    const y = await serve(dataDir);
    expect(x.url).not.toBe(y.url);
    const fromX = await signInOn(x, dataDir, 'bound@example.com');
    expect(await asBrowserOf(x, fromX)).toMatchObject({ me: 200, device: 200 });
    expect(await asBrowserOf(y, fromX)).toEqual({
      me: 401,
      device: 303,
      location: `/login?next=${encodeURIComponent('/device')}`,
    });
    const fromY = await signInOn(y, dataDir, 'bound@example.com');
    expect(await asBrowserOf(x, fromY)).toMatchObject({ me: 401, device: 303 });
    expect(await asBrowserOf(y, fromY)).toMatchObject({ me: 200, device: 200 });
  });

  it('a cookie of another Breeze server (another data dir) is refused', async () => {
    const [dirX, dirY] = [mkdtempSync(join(tmpdir(), 'breeze-x-')), mkdtempSync(join(tmpdir(), 'breeze-y-'))];
    dirs.push(dirX, dirY);
    const x = await serve(dirX);
    const y = await serve(dirY);
    const fromX = await signInOn(x, dirX, 'other@example.com');
    expect(await asBrowserOf(x, fromX)).toMatchObject({ me: 200, device: 200 });
    expect(await asBrowserOf(y, fromX)).toMatchObject({ me: 401, device: 303 });
  });
});
