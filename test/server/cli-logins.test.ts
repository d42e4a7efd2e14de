import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { MailMessage } from '../../src/server/mail/mailer.js';
import { OutboxMailer } from '../../src/server/mail/outbox.js';
import { formFields, InjectBrowser } from '../helpers/browser.js';
import { testEngines } from '../helpers/engines.js';
import type { TestServer } from '../helpers/server.js';

const USER_CODE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/;

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

// black-box over HTTP on both engines: API.md "CLI login" holds on SQLite and PostgreSQL alike
const eng = testEngines();
afterAll(() => eng.stop());
const engines = eng.list.filter((e) => !e.skip);

describe.each(engines)('CLI login (POST /v1/cli/logins + exchange) on $name', (engine) => {
  let server: TestServer;
  let now: number;
  const mails: MailMessage[] = [];
  const outbox = mkdtempSync(join(tmpdir(), 'breeze-outbox-'));

  beforeAll(async () => {
    now = Date.parse('2026-01-01T12:00:00Z');
    server = await engine.startServer({
      clock: () => new Date(now),
      mailer: new OutboxMailer(outbox, undefined, (m) => mails.push(m)),
      config: { publicUrl: 'http://127.0.0.1:4455' },
    });
  });
  afterAll(async () => {
    await server.close();
    rmSync(outbox, { recursive: true, force: true });
  });
  beforeEach(() => {
    now += 3600_000; // a fresh hour: no login from a previous test is still alive or rate-limited
  });

  const codeFor = (email: string) => () =>
    [...mails]
      .reverse()
      .find((m) => m.to === email)
      ?.subject.replace('Your Breeze code: ', '');

  async function signedIn(email = 'dev@example.com'): Promise<InjectBrowser> {
    const b = new InjectBrowser(server.app);
    await b.signIn(email, codeFor(email));
    return b;
  }

  async function create(body: Record<string, unknown> = {}) {
    const { verifier, challenge } = pkce();
    const res = await server.app.inject({
      method: 'POST',
      url: '/v1/cli/logins',
      payload: {
        code_challenge: challenge,
        code_challenge_method: 'S256',
        client_name: 'breeze/0.1.0',
        hostname: 'laptop',
        ...body,
      },
    });
    return { res, verifier, body: res.json() };
  }

  function exchange(loginId: string, payload: Record<string, unknown>) {
    return server.app.inject({ method: 'POST', url: `/v1/cli/logins/${loginId}/exchange`, payload });
  }

  const errorCode = (res: { json(): unknown }) => (res.json() as { error: { code: string } }).error.code;

  async function keysOf(email: string): Promise<number> {
    const user = await server.store.users.findByEmail(email);
    if (!user) return 0;
    return (await server.store.keys.list(user.id, { limit: 100, now: new Date(now) })).length;
  }

  it('creates a login with a high-entropy id and a user code shown as XXXX-XXXX, storing only its hash', async () => {
    const { res, body } = await create();
    expect(res.statusCode).toBe(201);
    expect(body.user_code).toMatch(USER_CODE);
    expect(body.expires_in).toBe(600);
    expect(body.interval).toBeGreaterThanOrEqual(1);
    expect(body.verification_uri).toBe('http://127.0.0.1:4455/device');
    expect(body.verification_uri_complete).toBe(`http://127.0.0.1:4455/device?user_code=${body.user_code}`);
    // >= 128 bits: at least 22 base64url characters of randomness after the prefix
    expect(body.login_id.replace(/^login_/, '')).toMatch(/^[A-Za-z0-9_-]{22,}$/);
    const row = await server.store.db
      .selectFrom('cli_logins')
      .selectAll()
      .where('id', '=', body.login_id)
      .executeTakeFirstOrThrow();
    const stored = JSON.stringify(row);
    expect(stored).not.toContain(body.user_code);
    expect(stored).not.toContain(body.user_code.replace('-', ''));
  });

  it('accepts only S256 and loopback redirect URIs', async () => {
    expect((await create({ code_challenge_method: 'plain' })).res.statusCode).toBe(400);
    for (const uri of [
      'http://localhost:8080/callback',
      'https://127.0.0.1:8080/callback',
      'http://127.0.0.1/callback',
      'http://evil.example:8080/callback',
      'http://127.0.0.1:8080@evil.example/callback',
      'http://127.0.0.1.evil.example:8080/',
      'http://[::2]:8080/',
      'http://127.0.0.1:8080/callback#frag',
      'javascript:alert(1)',
      '//127.0.0.1:8080/',
    ]) {
      const { res } = await create({ redirect_uri: uri });
      expect(res.statusCode, uri).toBe(400);
      expect(errorCode(res), uri).toBe('VALIDATION_FAILED');
    }
    for (const uri of ['http://127.0.0.1:49152/callback', 'http://[::1]:8080/cb']) {
      expect((await create({ redirect_uri: uri })).res.statusCode, uri).toBe(201);
    }
  });

  it('optional fields sent as null are fields not sent (device mode, default name and scopes)', async () => {
    const { res, body, verifier } = await create({
      hostname: 'nulls',
      key_name: null,
      scopes: null,
      redirect_uri: null,
      state: null,
    });
    expect(res.statusCode, res.body).toBe(201);
    const browser = await signedIn('nulls@example.com');
    expect((await browser.decide(body.user_code, 'approve')).statusCode).toBe(200);
    const ok = await exchange(body.login_id, { code_verifier: verifier, code: null });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json().key).toMatchObject({
      name: 'nulls (breeze login)',
      scopes: ['read', 'write', 'admin'],
    });
    // a required field is still required
    expect((await create({ hostname: null })).res.statusCode).toBe(400);
  });

  it('device mode: pending, slow down, approve in the browser, exactly one key, then replay is refused', async () => {
    const { body, verifier } = await create({ hostname: 'build-box' });
    const first = await exchange(body.login_id, { code_verifier: verifier });
    expect(errorCode(first)).toBe('AUTHORIZATION_PENDING');
    const fast = await exchange(body.login_id, { code_verifier: verifier });
    expect(fast.statusCode).toBe(400);
    expect(errorCode(fast)).toBe('SLOW_DOWN');

    const browser = await signedIn('device@example.com');
    const approved = await browser.decide(body.user_code, 'approve');
    expect(approved.statusCode).toBe(200);
    expect(approved.body).toContain('Login approved');

    // decided logins answer at once: only a pending one is paced
    const ok = await exchange(body.login_id, { code_verifier: verifier });
    expect(ok.statusCode).toBe(200);
    const result = ok.json();
    expect(result.api_key).toMatch(/^brz_[0-9A-Za-z]{46}$/);
    expect(result.user.email).toBe('device@example.com');
    expect(result.key).toMatchObject({
      name: 'build-box (breeze login)',
      scopes: ['read', 'write', 'admin'],
      created_via: 'cli_login',
      status: 'active',
    });
    const me = await server.app.inject({ url: '/v1/me', headers: { 'xi-api-key': result.api_key } });
    expect(me.json().user.email).toBe('device@example.com');

    const replay = await exchange(body.login_id, { code_verifier: verifier });
    expect(errorCode(replay)).toBe('INVALID_GRANT');
    expect(await keysOf('device@example.com')).toBe(1);
  });

  it('a client polling every `interval` on a timer never gets SLOW_DOWN, though its polls arrive a little early', async () => {
    const { body, verifier } = await create();
    const step = body.interval * 1000;
    const poll = async (after: number) => {
      now += after;
      return errorCode(await exchange(body.login_id, { code_verifier: verifier }));
    };
    expect(await poll(0)).toBe('AUTHORIZATION_PENDING');
    // a grid of `interval` with a few milliseconds of jitter either way
    for (const jitter of [-3, +3, -40, +40, -3])
      expect(await poll(step + jitter)).toBe('AUTHORIZATION_PENDING');
    // faster than that is too fast: right away, and at half the interval
    expect(await poll(0)).toBe('SLOW_DOWN');
    expect(await poll(step / 2)).toBe('SLOW_DOWN');
    expect(await poll(step)).toBe('AUTHORIZATION_PENDING');
    // and a client a fifth too fast, steadily, is too fast too (the slack covers jitter, not a rate)
    expect(await poll(step * 0.8)).toBe('SLOW_DOWN');
    expect(await poll(step)).toBe('AUTHORIZATION_PENDING');
  });

  it('a wrong verifier never yields a key (and does not burn the login)', async () => {
    const { body, verifier } = await create();
    const browser = await signedIn('verifier@example.com');
    await browser.decide(body.user_code, 'approve');
    for (const wrong of [
      pkce().verifier,
      `${verifier.slice(0, -1)}${verifier.endsWith('A') ? 'B' : 'A'}`,
      'short',
      'x'.repeat(129),
    ]) {
      const res = await exchange(body.login_id, { code_verifier: wrong });
      expect(res.statusCode).toBe(400);
      expect(errorCode(res)).toBe('INVALID_GRANT');
      expect(res.body).not.toContain('brz_');
    }
    expect(await keysOf('verifier@example.com')).toBe(0);
    expect((await exchange(body.login_id, { code_verifier: verifier })).statusCode).toBe(200);
  });

  it('loopback mode: approval redirects with a code and state; the exchange needs that code', async () => {
    const { body, verifier } = await create({
      redirect_uri: 'http://127.0.0.1:51234/callback',
      state: 'st4te',
    });
    const browser = await signedIn('loop@example.com');
    const page = await browser.get(`/device?user_code=${body.user_code}`);
    // the approve form ends up at the loopback listener: the CSP has to allow that target
    expect(page.headers['content-security-policy']).toContain("form-action 'self' http://127.0.0.1:51234");
    const res = await browser.decide(body.user_code, 'approve');
    expect(res.statusCode).toBe(303);
    const location = new URL(String(res.headers.location));
    expect(location.origin + location.pathname).toBe('http://127.0.0.1:51234/callback');
    expect(location.searchParams.get('state')).toBe('st4te');
    const code = location.searchParams.get('code') ?? '';
    expect(code.length).toBeGreaterThanOrEqual(22);

    const missing = await exchange(body.login_id, { code_verifier: verifier });
    expect(errorCode(missing)).toBe('INVALID_GRANT');
    const wrong = await exchange(body.login_id, { code_verifier: verifier, code: `${code}x` });
    expect(errorCode(wrong)).toBe('INVALID_GRANT');
    const stolen = await exchange(body.login_id, { code_verifier: pkce().verifier, code });
    expect(errorCode(stolen)).toBe('INVALID_GRANT');
    expect(await keysOf('loop@example.com')).toBe(0);
    const ok = await exchange(body.login_id, { code_verifier: verifier, code });
    expect(ok.statusCode).toBe(200);
    expect(errorCode(await exchange(body.login_id, { code_verifier: verifier, code }))).toBe('INVALID_GRANT');
    expect(await keysOf('loop@example.com')).toBe(1);
  });

  it('a login older than expires_in is EXPIRED_TOKEN and cannot be approved', async () => {
    const { body, verifier } = await create();
    const browser = await signedIn('late@example.com');
    now += 601_000;
    const page = await browser.get(`/device?user_code=${body.user_code}`);
    expect(page.statusCode).toBe(410);
    expect(page.body).toContain('expired');
    const res = await exchange(body.login_id, { code_verifier: verifier });
    expect(errorCode(res)).toBe('EXPIRED_TOKEN');
    expect(await keysOf('late@example.com')).toBe(0);
  });

  it('an approved login that is not exchanged in time expires too', async () => {
    const { body, verifier } = await create();
    const browser = await signedIn('slow@example.com');
    expect((await browser.decide(body.user_code, 'approve')).statusCode).toBe(200);
    now += 600_000;
    expect(errorCode(await exchange(body.login_id, { code_verifier: verifier }))).toBe('EXPIRED_TOKEN');
    expect(await keysOf('slow@example.com')).toBe(0);
  });

  it('deny: ACCESS_DENIED, and no key', async () => {
    const { body, verifier } = await create();
    const browser = await signedIn('deny@example.com');
    const res = await browser.decide(body.user_code, 'deny');
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('Login denied');
    expect(errorCode(await exchange(body.login_id, { code_verifier: verifier }))).toBe('ACCESS_DENIED');
    // a denied login cannot be approved afterwards
    const csrfPage = await browser.get(`/device?user_code=${body.user_code}`);
    expect(csrfPage.statusCode).toBe(409);
    expect(await keysOf('deny@example.com')).toBe(0);
  });

  it('loopback deny tells the listener at once', async () => {
    const { body } = await create({ redirect_uri: 'http://127.0.0.1:51234/cb', state: 's' });
    const browser = await signedIn('deny2@example.com');
    const res = await browser.decide(body.user_code, 'deny');
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('http://127.0.0.1:51234/cb?error=access_denied&state=s');
  });

  it('approve without a CSRF token, with another session’s token, or from another origin is refused', async () => {
    const { body, verifier } = await create();
    const victim = await signedIn('victim@example.com');
    const attacker = await signedIn('attacker@example.com');
    const attackerCsrf = await attacker.authorizeCsrf(body.user_code);
    const victimForm = formFields((await victim.typeCode(body.user_code)).body, '/device/approve');
    const victimCsrf = victimForm.csrf ?? '';

    const none = await victim.post('/device/approve', { user_code: body.user_code });
    expect(none.statusCode).toBe(403);
    const foreign = await victim.post('/device/approve', { user_code: body.user_code, csrf: attackerCsrf });
    expect(foreign.statusCode).toBe(403);
    const crossSite = await victim.post(
      '/device/approve',
      { user_code: body.user_code, csrf: victimCsrf },
      { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
    );
    expect(crossSite.statusCode).toBe(403);
    const noSession = new InjectBrowser(server.app);
    const anon = await noSession.post('/device/approve', { user_code: body.user_code, csrf: victimCsrf });
    expect(anon.statusCode).toBe(303);
    expect(anon.headers.location).toMatch(/^\/login\?next=/);

    expect(errorCode(await exchange(body.login_id, { code_verifier: verifier }))).toBe(
      'AUTHORIZATION_PENDING',
    );
    expect(await keysOf('victim@example.com')).toBe(0);
    // the real form (after typing the code) still works
    expect((await victim.post('/device/approve', victimForm)).statusCode).toBe(200);
  });

  it('two concurrent exchanges of one approval yield exactly one key', async () => {
    const { body, verifier } = await create({ redirect_uri: 'http://127.0.0.1:51234/cb' });
    const browser = await signedIn('race@example.com');
    const res = await browser.decide(body.user_code, 'approve');
    const code = new URL(String(res.headers.location)).searchParams.get('code') ?? '';
    const results = await Promise.all(
      Array.from({ length: 6 }, () => exchange(body.login_id, { code_verifier: verifier, code })),
    );
    const ok = results.filter((r) => r.statusCode === 200);
    expect(ok).toHaveLength(1);
    for (const r of results) if (r.statusCode !== 200) expect(errorCode(r)).toBe('INVALID_GRANT');
    expect(await keysOf('race@example.com')).toBe(1);
  });

  it('unknown login ids and malformed bodies are 400s, never 5xx', async () => {
    const { verifier } = pkce();
    expect(errorCode(await exchange('login_nope', { code_verifier: verifier }))).toBe('INVALID_GRANT');
    for (const payload of [{}, { code_verifier: 5 }, { code_verifier: verifier, code: [] }]) {
      const res = await exchange('login_nope', payload);
      expect(res.statusCode).toBe(400);
      expect(errorCode(res)).toBe('VALIDATION_FAILED');
    }
    const bad = await server.app.inject({
      method: 'POST',
      url: '/v1/cli/logins',
      headers: { 'content-type': 'application/json' },
      payload: '{"code_challenge":',
    });
    expect(bad.statusCode).toBe(400);
    expect((await create({ hostname: '' })).res.statusCode).toBe(400);
    expect((await create({ scopes: ['root'] })).res.statusCode).toBe(400);
  });

  it('custom key name and scopes are honoured (read is always included)', async () => {
    const { body, verifier } = await create({ key_name: 'ci runner', scopes: ['write'] });
    const browser = await signedIn('named@example.com');
    const page = await browser.typeCode(body.user_code);
    expect(page.body).toContain('ci runner');
    await browser.decide(body.user_code, 'approve');
    const res = await exchange(body.login_id, { code_verifier: verifier });
    expect(res.json().key).toMatchObject({ name: 'ci runner', scopes: ['read', 'write'] });
  });

  it('a browser session authenticates /v1/me and /v1/api-keys, but not a cross-site write', async () => {
    const browser = await signedIn('session@example.com');
    // API.md (issue 10): the cookie counts only on a same-origin browser request
    const sameOrigin = { cookie: browser.cookieHeader(), 'sec-fetch-site': 'same-origin' };
    const me = await server.app.inject({ url: '/v1/me', headers: sameOrigin });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ user: { email: 'session@example.com' }, auth: { type: 'session' } });
    const list = await server.app.inject({ url: '/v1/api-keys', headers: sameOrigin });
    expect(list.statusCode).toBe(200);
    const created = await server.app.inject({
      method: 'POST',
      url: '/v1/api-keys',
      headers: { cookie: browser.cookieHeader(), origin: 'http://127.0.0.1:4455' },
      payload: { name: 'from the browser' },
    });
    expect(created.statusCode).toBe(201);
    const crossSite = await server.app.inject({
      method: 'POST',
      url: '/v1/api-keys',
      headers: {
        cookie: browser.cookieHeader(),
        origin: 'http://evil.example',
        'sec-fetch-site': 'cross-site',
      },
      payload: { name: 'csrf' },
    });
    expect(crossSite.statusCode).toBe(401);
    const forged = await server.app.inject({
      url: '/v1/me',
      headers: { cookie: 'breeze_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
    });
    expect(forged.statusCode).toBe(401);
  });
});
