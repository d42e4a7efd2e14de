/**
 * Device-mode phishing (issue 10, item 1): an attacker starts `POST /v1/cli/logins` without a
 * redirect and sends the victim `verification_uri_complete`. A link alone must never approve: the
 * page asks the victim to type the code, says the request comes from another device, shows its IP
 * and warns when it is not the victim's, and presents the requester's free text as claims.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { MailMessage } from '../../src/server/mail/mailer.js';
import { OutboxMailer } from '../../src/server/mail/outbox.js';
import { openStore, type Store } from '../../src/server/store/index.js';
import { formFields, hiddenField, InjectBrowser } from '../helpers/browser.js';
import { postgresAvailability, startPostgres, type TestPostgres, uniqueDbName } from '../helpers/postgres.js';
import { requirePart } from '../helpers/require.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const ATTACKER_IP = '203.0.113.9';
const VICTIM_IP = '198.51.100.7';

const pg = postgresAvailability();
const engines = [
  { engine: 'sqlite', skip: false },
  { engine: 'postgres', skip: requirePart('PostgreSQL', pg.available, pg.why) },
] as const;

describe.each(engines)('device-mode login on $engine: a link alone never approves', ({ engine, skip }) => {
  let server: TestServer;
  let pgs: TestPostgres | undefined;
  let store: Store | undefined;
  let now = Date.parse('2026-03-01T09:00:00Z');
  const mails: MailMessage[] = [];
  const outbox = mkdtempSync(join(tmpdir(), 'breeze-outbox-'));

  beforeAll(async () => {
    if (skip) return;
    if (engine === 'postgres') {
      pgs = await startPostgres();
      store = await openStore({ databaseUrl: await pgs.createDatabase(uniqueDbName('phish')) });
    }
    server = await startTestServer({
      store,
      clock: () => new Date(now),
      mailer: new OutboxMailer(outbox, undefined, (m) => mails.push(m)),
      config: { publicUrl: 'http://127.0.0.1:4455' },
    });
  });
  afterAll(async () => {
    await server?.close();
    await store?.close();
    await pgs?.stop();
    rmSync(outbox, { recursive: true, force: true });
  });
  beforeEach((t) => {
    if (skip) t.skip();
    now += 3600_000;
  });

  async function signedIn(email: string, ip: string): Promise<InjectBrowser> {
    const b = new InjectBrowser(server.app);
    b.remoteAddress = ip;
    await b.signIn(email, () =>
      mails.findLast((m) => m.to === email)?.subject.replace('Your Breeze code: ', ''),
    );
    return b;
  }

  /** The attacker's `POST /v1/cli/logins`, with names of its choosing. */
  async function startLogin(ip: string, extra: Record<string, unknown> = {}) {
    const verifier = randomBytes(32).toString('base64url');
    const res = await server.app.inject({
      method: 'POST',
      url: '/v1/cli/logins',
      remoteAddress: ip,
      payload: {
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256',
        client_name: 'Breeze Support Tool (official)',
        hostname: 'your-laptop',
        key_name: 'security update',
        ...extra,
      },
    });
    expect(res.statusCode).toBe(201);
    const body = res.json() as { login_id: string; user_code: string; verification_uri_complete: string };
    const exchange = () =>
      server.app.inject({
        method: 'POST',
        url: `/v1/cli/logins/${body.login_id}/exchange`,
        remoteAddress: ip,
        payload: { code_verifier: verifier },
      });
    return {
      ...body,
      path: new URL(body.verification_uri_complete).pathname + new URL(body.verification_uri_complete).search,
      exchange,
    };
  }

  const errorCode = (res: { json(): unknown }) => (res.json() as { error: { code: string } }).error.code;

  it('the link opens an empty code-entry page: no Approve form, no code, nothing about the request', async () => {
    const login = await startLogin(ATTACKER_IP);
    const victim = await signedIn('victim@example.com', VICTIM_IP);
    const page = await victim.get(login.path);
    expect(page.statusCode).toBe(200);
    expect(page.body).not.toContain('/device/approve');
    expect(page.body).not.toMatch(/>\s*Approve\s*</);
    // the code is not filled in from the link: the user has to type it
    expect(page.body).not.toContain(login.user_code);
    expect(page.body).not.toContain(login.user_code.replace('-', ''));
    expect(page.body).toMatch(/<input id="user_code" name="user_code"[^>]*required[^>]*>/);
    expect(page.body).not.toMatch(/<input id="user_code"[^>]*value="[^"]+"/);
    expect(page.body).toContain('another device');
    expect(page.body).not.toContain('Breeze Support Tool');
    expect(page.body).toMatch(/<form method="post" action="\/device">/);
  });

  it('a POST approve without the typed-code step is refused, and the exchange stays pending', async () => {
    const login = await startLogin(ATTACKER_IP);
    const victim = await signedIn('victim2@example.com', VICTIM_IP);
    const linkPage = await victim.get(login.path);
    const csrf = hiddenField(linkPage.body, 'csrf');
    const approveWith = async (typed: string | undefined) => {
      const res = await victim.post('/device/approve', { csrf, user_code: login.user_code, typed });
      expect(res.statusCode, String(typed)).toBe(403);
      expect(res.body).toContain('type the code');
    };
    // a valid session CSRF token alone is not enough
    for (const typed of [undefined, '', 'x']) await approveWith(typed);
    // nor is a proof made for another login, or by another session (the attacker typing the code
    // in its own session)
    const other = await startLogin(ATTACKER_IP);
    await approveWith(formFields((await victim.typeCode(other.user_code)).body, '/device/approve').typed);
    const attacker = await signedIn('attacker@example.com', ATTACKER_IP);
    await approveWith(formFields((await attacker.typeCode(login.user_code)).body, '/device/approve').typed);
    const pending = await login.exchange();
    expect(pending.statusCode).toBe(400);
    expect(errorCode(pending)).toBe('AUTHORIZATION_PENDING');
    expect(await server.store.users.findByEmail('victim2@example.com')).toBeDefined();
    const victimUser = await server.store.users.findByEmail('victim2@example.com');
    expect(
      await server.store.keys.list(victimUser?.id ?? '', { limit: 10, now: new Date(now) }),
    ).toHaveLength(0);
  });

  it('after typing the code: says "another device", shows the IP with a warning, claims as claims; Approve then works', async () => {
    const login = await startLogin(ATTACKER_IP);
    const victim = await signedIn('victim3@example.com', VICTIM_IP);
    const page = await victim.typeCode(login.user_code.toLowerCase());
    expect(page.statusCode).toBe(200);
    const text = page.body.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
    expect(text).toContain('another device');
    expect(text).toContain(`IP address ${ATTACKER_IP}`);
    // a visible warning: the request did not come from where the approver is
    expect(page.body).toMatch(/<div class="warning" role="alert">/);
    expect(text).toContain(`came from IP ${ATTACKER_IP}, but you are at ${VICTIM_IP}`);
    // free text is the requester's claim, never a fact
    expect(text).toContain(
      'It says it is “Breeze Support Tool (official)” on a computer named “your-laptop”',
    );
    expect(text).toContain('as claimed by the requester');
    expect(text).toContain('“security update” as requested');
    expect(text).toContain('The new key will belong to victim3@example.com');
    expect(page.body).toContain('action="/device/approve"');

    const approved = await victim.post('/device/approve', formFields(page.body, '/device/approve'));
    expect(approved.statusCode).toBe(200);
    const done = await login.exchange();
    expect(done.statusCode).toBe(200);
    expect(done.json().user.email).toBe('victim3@example.com');
  });

  it('no address warning when the request came from the approver’s own address', async () => {
    const login = await startLogin(VICTIM_IP);
    const victim = await signedIn('same@example.com', VICTIM_IP);
    const page = await victim.typeCode(login.user_code);
    expect(page.statusCode).toBe(200);
    expect(page.body).not.toContain('class="warning"');
    expect(page.body).toContain('your own address');
  });

  it('a typo shows the code page again with what was typed, and no Approve form', async () => {
    const victim = await signedIn('typo@example.com', VICTIM_IP);
    const page = await victim.typeCode('BCDF-GHJX');
    expect(page.statusCode).toBe(404);
    expect(page.body).toContain('No login is waiting');
    expect(page.body).toMatch(/<input id="user_code"[^>]*value="BCDF-GHJX"/);
    expect(page.body).not.toContain('/device/approve');
    // a link with a code that matches nothing does not fill the field either
    const linked = await victim.get('/device?user_code=BCDF-GHJX');
    expect(linked.statusCode).toBe(404);
    expect(linked.body).not.toContain('BCDF-GHJX');
  });

  it('the typed-code form itself needs the session’s CSRF token and a same-origin post', async () => {
    const login = await startLogin(ATTACKER_IP);
    const victim = await signedIn('csrf@example.com', VICTIM_IP);
    const csrf = hiddenField((await victim.get('/device')).body, 'csrf');
    expect((await victim.post('/device', { user_code: login.user_code })).statusCode).toBe(403);
    const crossSite = await victim.post(
      '/device',
      { csrf, user_code: login.user_code },
      { origin: 'http://127.0.0.1:6666', 'sec-fetch-site': 'same-site' },
    );
    expect(crossSite.statusCode).toBe(403);
    expect(crossSite.body).not.toContain('/device/approve');
  });

  it('the new form never answers 5xx to bad input, and always with a page', async () => {
    const victim = await signedIn('fuzz@example.com', VICTIM_IP);
    const csrf = hiddenField((await victim.get('/device')).body, 'csrf');
    const login = await startLogin(ATTACKER_IP);
    const forms: Record<string, string | undefined>[] = [
      {},
      { csrf },
      { csrf, user_code: '\u0000' },
      { csrf, user_code: `${login.user_code}\u0000` },
      { csrf, user_code: 'A'.repeat(5000) },
      { csrf, user_code: '\u202e\u200bBCDF-GHJK' },
      { csrf: '\u0000', user_code: login.user_code },
    ];
    for (const form of forms) {
      for (const path of ['/device', '/device/approve', '/device/deny']) {
        const res = await victim.post(path, { ...form, typed: '\u0000\u00ff' });
        expect(res.statusCode, `${path} ${JSON.stringify(form)}`).toBeLessThan(500);
        expect(res.headers['content-type']).toMatch(/^text\/html/);
      }
    }
    for (const payload of ['user_code=a&user_code=b', '%%%', 'csrf[]=1']) {
      const res = await server.app.inject({
        method: 'POST',
        url: '/device',
        headers: { cookie: victim.cookieHeader(), 'content-type': 'application/x-www-form-urlencoded' },
        payload,
      });
      expect(res.statusCode, payload).toBeLessThan(500);
    }
    const json = await server.app.inject({
      method: 'POST',
      url: '/device',
      headers: { cookie: victim.cookieHeader(), 'content-type': 'application/json' },
      payload: JSON.stringify({ csrf, user_code: [login.user_code] }),
    });
    expect(json.statusCode).toBeLessThan(500);
    expect(errorCode(await login.exchange())).toBe('AUTHORIZATION_PENDING');
  });

  it('guessing codes through the typed-code form is limited per address (429 page with Retry-After)', async () => {
    const guesser = await signedIn('guesser@example.com', '192.0.2.77');
    const csrf = hiddenField((await guesser.get('/device')).body, 'csrf');
    const statuses: number[] = [];
    for (let i = 0; i < 61; i++) {
      statuses.push((await guesser.post('/device', { csrf, user_code: 'BCDF-GHJK' })).statusCode);
    }
    expect(statuses.slice(0, 60)).toEqual(Array(60).fill(404));
    const limited = await guesser.post('/device', { csrf, user_code: 'BCDF-GHJK' });
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['retry-after']).toBeDefined();
    expect(limited.headers['content-type']).toMatch(/^text\/html/);
  });

  it('with a loopback redirect the link still opens the Approve page at once (one click)', async () => {
    const login = await startLogin('127.0.0.1', { redirect_uri: 'http://127.0.0.1:51234/callback' });
    const me = await signedIn('loopback@example.com', '127.0.0.1');
    const page = await me.get(login.path);
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('action="/device/approve"');
    const res = await me.post('/device/approve', formFields(page.body, '/device/approve'));
    expect(res.statusCode).toBe(303);
    expect(String(res.headers.location)).toMatch(/^http:\/\/127\.0\.0\.1:51234\/callback\?code=/);
  });
});
