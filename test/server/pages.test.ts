import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MailMessage } from '../../src/server/mail/mailer.js';
import { OutboxMailer } from '../../src/server/mail/outbox.js';
import { LoginsRepo } from '../../src/server/store/logins.js';
import { hiddenField, InjectBrowser } from '../helpers/browser.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

async function withServer(
  config: Record<string, unknown>,
  fn: (s: TestServer, mails: MailMessage[]) => Promise<void>,
) {
  const mails: MailMessage[] = [];
  const outbox = mkdtempSync(join(tmpdir(), 'breeze-outbox-'));
  const server = await startTestServer({
    mailer: new OutboxMailer(outbox, undefined, (m) => mails.push(m)),
    config: { publicUrl: 'http://127.0.0.1:4455', ...config },
  });
  try {
    await fn(server, mails);
  } finally {
    await server.close();
    rmSync(outbox, { recursive: true, force: true });
  }
}

describe('browser pages', () => {
  let server: TestServer;
  const mails: MailMessage[] = [];
  const outbox = mkdtempSync(join(tmpdir(), 'breeze-outbox-'));
  const lastCode = (email: string) => () =>
    [...mails]
      .reverse()
      .find((m) => m.to === email)
      ?.subject.replace('Your Breeze code: ', '');

  beforeAll(async () => {
    server = await startTestServer({
      mailer: new OutboxMailer(outbox, undefined, (m) => mails.push(m)),
      config: { publicUrl: 'http://127.0.0.1:4455' },
    });
  });
  afterAll(async () => {
    await server.close();
    rmSync(outbox, { recursive: true, force: true });
  });

  async function newLogin(extra: Record<string, unknown> = {}) {
    const verifier = randomBytes(32).toString('base64url');
    const res = await server.app.inject({
      method: 'POST',
      url: '/v1/cli/logins',
      payload: {
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256',
        client_name: 'breeze/0.1.0',
        hostname: 'laptop',
        ...extra,
      },
    });
    return { ...res.json(), verifier };
  }

  it('sends a strict CSP (inline style allowed only by its hash), no framing, no caching', async () => {
    const res = await server.app.inject({ url: '/login' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("form-action 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['cache-control']).toBe('no-store');
    const style = /<style>([\s\S]*?)<\/style>/.exec(res.body)?.[1] ?? '';
    const hash = createHash('sha256').update(style).digest('base64');
    expect(csp).toContain(`style-src 'sha256-${hash}'`);
    expect(res.body).not.toMatch(/<script|https?:\/\/(?!127\.0\.0\.1)/);
  });

  it('signs in with a mailed code; the cookie is HttpOnly, SameSite=Lax, and only its hash is stored', async () => {
    const b = new InjectBrowser(server.app);
    const page = await b.get('/login?next=/device');
    const sent = await b.post('/login', {
      email: 'Pages@Example.com',
      csrf: hiddenField(page.body, 'csrf'),
      next: '/device',
    });
    expect(sent.statusCode).toBe(200);
    expect(sent.body).toContain('Check your email');
    // the mail goes out in the background, after the answer
    await expect.poll(() => mails.at(-1)?.to).toBe('pages@example.com');
    const mail = mails.at(-1);
    expect(mail?.subject).toMatch(/^Your Breeze code: [0-9A-Z]{8}$/);
    expect(mail?.to).toBe('pages@example.com');
    const code = lastCode('pages@example.com')() ?? '';

    const wrong = await b.post('/login/code', {
      code: code === 'AAAAAAAA' ? 'BBBBBBBB' : 'AAAAAAAA',
      code_id: hiddenField(sent.body, 'code_id'),
      email: 'pages@example.com',
      csrf: hiddenField(sent.body, 'csrf'),
      next: '/device',
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain('not right');

    const done = await b.post('/login/code', {
      code: code.toLowerCase(),
      code_id: hiddenField(sent.body, 'code_id'),
      email: 'pages@example.com',
      csrf: hiddenField(sent.body, 'csrf'),
      next: '/device?user_code=BCDF-GHJK',
    });
    expect(done.statusCode).toBe(303);
    expect(done.headers.location).toBe('/device?user_code=BCDF-GHJK');
    const setCookie = ([] as string[])
      .concat(done.headers['set-cookie'] ?? [])
      .find((c) => c.startsWith('breeze_session='));
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Lax/);
    expect(setCookie).not.toMatch(/Secure/);
    const token = b.cookies.get('breeze_session') ?? '';
    expect(token.length).toBeGreaterThanOrEqual(43);
    const rows = await server.store.db.selectFrom('browser_sessions').selectAll().execute();
    expect(rows.length).toBeGreaterThan(0);
    expect(JSON.stringify(rows)).not.toContain(token);

    // signed in: /login goes straight on, /device asks for the code
    expect((await b.get('/login?next=/device')).statusCode).toBe(303);
    const device = await b.get('/device');
    expect(device.statusCode).toBe(200);
    expect(device.body).toContain('Enter the code');

    // the code is single-use
    const again = await new InjectBrowser(server.app).post('/login/code', {
      code,
      code_id: hiddenField(sent.body, 'code_id'),
      csrf: 'x',
    });
    expect(again.statusCode).toBe(403);

    // sign out ends the session on the server
    const me = () =>
      server.app.inject({
        url: '/v1/me',
        headers: { cookie: `breeze_session=${token}`, 'sec-fetch-site': 'same-origin' },
      });
    expect((await me()).statusCode).toBe(200);
    const out = await b.post('/logout', { csrf: hiddenField(device.body, 'csrf') });
    expect(out.statusCode).toBe(303);
    expect((await me()).statusCode).toBe(401);
  });

  it('the sign-in forms need the form token and a same-origin POST', async () => {
    const b = new InjectBrowser(server.app);
    const page = await b.get('/login');
    expect((await b.post('/login', { email: 'x@example.com' })).statusCode).toBe(403);
    const cross = await b.post(
      '/login',
      { email: 'x@example.com', csrf: hiddenField(page.body, 'csrf') },
      { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
    );
    expect(cross.statusCode).toBe(403);
  });

  it('signed out, the authorize link leads through sign-in and back; open redirects are refused', async () => {
    const b = new InjectBrowser(server.app);
    const res = await b.get('/device?user_code=BCDF-GHJK');
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(`/login?next=${encodeURIComponent('/device?user_code=BCDF-GHJK')}`);
    await b.signIn('redirect@example.com', lastCode('redirect@example.com'));
    for (const next of [
      '//evil.example/',
      'https://evil.example/',
      '/\\evil.example',
      'javascript:alert(1)',
    ]) {
      const r = await b.get(`/login?next=${encodeURIComponent(next)}`);
      // the dashboard instead (where a sign-in without a `next` leads)
      expect(r.headers.location, next).toBe('/keys');
    }
  });

  it('shows the authorize page with code, client, host, IP, time and scopes, escaping everything', async () => {
    const login = await newLogin({ hostname: '<script>alert(1)</script>', client_name: 'breeze/9.9.9' });
    const b = new InjectBrowser(server.app);
    await b.signIn('show@example.com', lastCode('show@example.com'));
    // a login from another device: its page appears once the code is typed (as people type it)
    const page = await b.typeCode(login.user_code.toLowerCase().replace('-', ' '));
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain(login.user_code.slice(0, 4));
    expect(page.body).toContain(login.user_code.slice(5));
    expect(page.body).toContain('breeze/9.9.9');
    expect(page.body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page.body).not.toContain('<script>');
    expect(page.body).toContain('127.0.0.1');
    expect(page.body).toMatch(/\d{2}:\d{2}:\d{2} UTC/);
    for (const s of ['read', 'write', 'admin']) expect(page.body).toContain(`>${s}<`);
    expect(page.body).toMatch(/action="\/device\/approve"/);
    expect(page.body).toMatch(/action="\/device\/deny"/);
    const unknown = await b.get('/device?user_code=ZZZZ-ZZZZ');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.body).toContain('No login is waiting');
  });

  it('lets the approve form reach an IPv6 loopback listener (CSP cannot name [::1])', async () => {
    const login = await newLogin({ redirect_uri: 'http://[::1]:40123/callback', state: 'v6' });
    const b = new InjectBrowser(server.app);
    await b.signIn('v6@example.com', lastCode('v6@example.com'));
    const page = await b.get(`/device?user_code=${login.user_code}`);
    expect(page.headers['content-security-policy']).toContain("form-action 'self' http:;");
    const res = await b.decide(login.user_code, 'approve');
    expect(res.statusCode).toBe(303);
    expect(String(res.headers.location)).toMatch(/^http:\/\/\[::1\]:40123\/callback\?code=[\w-]+&state=v6$/);
  });

  it('never answers 5xx to bad input', async () => {
    const b = new InjectBrowser(server.app);
    await b.signIn('fuzz@example.com', lastCode('fuzz@example.com'));
    const cookie = b.cookieHeader();
    const requests: InjectOptions[] = [
      { method: 'POST', url: '/login', headers: { 'content-type': 'text/plain' }, payload: 'hello' },
      {
        method: 'POST',
        url: '/login',
        headers: { 'content-type': 'application/json' },
        payload: '{"email":[1]}',
      },
      { method: 'POST', url: '/login', headers: { 'content-type': 'application/json' }, payload: '{bad' },
      {
        method: 'POST',
        url: '/login',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'email=a&email=b&csrf=1&csrf=2',
      },
      {
        method: 'POST',
        url: '/login',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: '%%%',
      },
      {
        method: 'POST',
        url: '/login',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: `email=${'a'.repeat(70_000)}`,
      },
      { method: 'POST', url: '/login/code' },
      {
        method: 'POST',
        url: '/login/code',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
        payload: 'code_id=code_x&code=1',
      },
      { method: 'GET', url: '/device?user_code[]=x', headers: { cookie } },
      { method: 'GET', url: '/device?user_code=%00%ff', headers: { cookie } },
      { method: 'GET', url: `/device?user_code=${'A'.repeat(5000)}`, headers: { cookie } },
      { method: 'GET', url: '/device?user_code=BCDF-GHJK&user_code=BCDF-GHJK', headers: { cookie } },
      { method: 'POST', url: '/device/approve', headers: { cookie } },
      {
        method: 'POST',
        url: '/device/deny',
        headers: { cookie, 'content-type': 'application/json' },
        payload: '[]',
      },
      {
        method: 'POST',
        url: '/device/approve',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'user_code=%E0%A4%A',
      },
      {
        method: 'GET',
        url: '/login?next=%E0%A4%A',
        headers: { cookie: 'breeze_session=%%%; breeze_form="' },
      },
      { method: 'POST', url: '/logout', headers: { cookie: 'breeze_session=x'.repeat(100) } },
    ];
    for (const r of requests) {
      const res = await server.app.inject(r);
      expect(res.statusCode, `${r.method} ${r.url}`).toBeLessThan(500);
      // a person gets a page, not a JSON error
      if (res.statusCode !== 303)
        expect(res.headers['content-type'], `${r.method} ${r.url}`).toMatch(/^text\/html/);
    }
  });

  it('signup closed: an unknown email gets the same page and no mail; a known one gets its code', async () => {
    await withServer({ signup: 'closed' }, async (s, sent) => {
      await s.store.users.ensure('known@example.com');
      for (const email of ['stranger@example.com', 'known@example.com']) {
        const b = new InjectBrowser(s.app);
        const page = await b.get('/login');
        const res = await b.post('/login', { email, csrf: hiddenField(page.body, 'csrf') });
        expect(res.statusCode).toBe(200);
        expect(res.body).toContain('Check your email');
      }
      await expect.poll(() => sent.map((m) => m.to)).toEqual(['known@example.com']);
      expect(await s.store.users.findByEmail('stranger@example.com')).toBeUndefined();
    });
  });

  it('caps mailed codes per address and sign-in attempts per client, with a page saying so', async () => {
    await withServer({}, async (s, sent) => {
      const b = new InjectBrowser(s.app);
      const page = await b.get('/login');
      const csrf = hiddenField(page.body, 'csrf');
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) {
        statuses.push((await b.post('/login', { email: 'flood@example.com', csrf })).statusCode);
      }
      expect(statuses.slice(0, 10)).toEqual(Array(10).fill(200));
      expect(statuses.slice(10)).toEqual([429, 429]);
      await expect.poll(() => sent.filter((m) => m.to === 'flood@example.com')).toHaveLength(10);
      const perIp: number[] = [];
      for (let i = 0; i < 10; i++) {
        perIp.push((await b.post('/login', { email: `other${i}@example.com`, csrf })).statusCode);
      }
      expect(perIp.slice(0, 8)).toEqual(Array(8).fill(200));
      const limited = await b.post('/login', { email: 'late@example.com', csrf });
      expect(limited.statusCode).toBe(429);
      expect(limited.headers['content-type']).toMatch(/^text\/html/);
      expect(limited.headers['retry-after']).toBeDefined();
      expect(limited.body).toContain('Too many');
    });
  });

  it('over https the cookie is Secure with the __Host- prefix', async () => {
    await withServer({ publicUrl: 'https://breeze.example' }, async (s, sent) => {
      const b = new InjectBrowser(s.app);
      b.origin = 'https://breeze.example';
      const page = await b.get('/login');
      const form = ([] as string[]).concat(page.headers['set-cookie'] ?? []);
      expect(form.join('\n')).toMatch(/^__Host-breeze_form=.*; Secure/m);
      const res = await b.post('/login', { email: 'tls@example.com', csrf: hiddenField(page.body, 'csrf') });
      await expect.poll(() => sent.at(-1)?.to).toBe('tls@example.com');
      const code = sent.at(-1)?.subject.replace('Your Breeze code: ', '') ?? '';
      const done = await b.post('/login/code', {
        code,
        code_id: hiddenField(res.body, 'code_id'),
        csrf: hiddenField(res.body, 'csrf'),
      });
      expect(done.statusCode).toBe(303);
      const cookie = ([] as string[]).concat(done.headers['set-cookie'] ?? []).join('\n');
      expect(cookie).toMatch(
        /^__Host-breeze_session=[A-Za-z0-9_-]{43}; Path=\/; .*HttpOnly; SameSite=Lax; Secure$/m,
      );
    });
  });

  it('the approved -> exchanged transition happens once even when raced', async () => {
    const login = await newLogin();
    const b = new InjectBrowser(server.app);
    await b.signIn('repo@example.com', lastCode('repo@example.com'));
    expect((await b.decide(login.user_code, 'approve')).statusCode).toBe(200);
    const repo = new LoginsRepo(server.store.db);
    const wins = await Promise.all(
      Array.from({ length: 5 }, () => repo.markExchanged(login.login_id, new Date())),
    );
    expect(wins.filter(Boolean)).toHaveLength(1);
  });
});
