import { createPublicKey, verify as verifySignature } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EmailCodes } from '../../src/server/email-codes.js';
import { SmtpMailer } from '../../src/server/mail/smtp.js';
import { SqliteStore } from '../../src/server/store/sqlite.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { codeFromSubject, type ReceivedMail, startSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';

const PUBLIC_URL = 'https://breeze.example.test';

/** A clock tests can move; starts at the real time. */
function movableClock() {
  let offset = 0;
  const clock = () => new Date(Date.now() + offset);
  return {
    clock,
    advance: (ms: number) => {
      offset += ms;
    },
  };
}

let smtp: TestSmtpServer;
beforeAll(async () => {
  smtp = await startSmtpServer();
});
afterAll(async () => {
  await smtp.close();
});

let ip = 0;
/** Each request from its own address, so the per-IP limits (tested in rate-limit.test.ts) stay out of the way. */
const nextIp = () => `10.0.${Math.floor(++ip / 250)}.${(ip % 250) + 1}`;

async function startServer(opts: { signup?: 'open' | 'closed'; clock?: () => Date } = {}) {
  const mailer = new SmtpMailer(smtp.url);
  const server = await startTestServer({
    mailer,
    clock: opts.clock,
    config: { publicUrl: PUBLIC_URL, signup: opts.signup ?? 'open' },
  });
  return {
    server,
    async close() {
      await server.close();
      await mailer.close();
    },
  };
}

function requestCode(s: TestServer, email: string, type: 'api_key' | 'jwt' = 'api_key') {
  return s.app.inject({
    method: 'POST',
    url: '/auth/code',
    payload: { email, type },
    remoteAddress: nextIp(),
  });
}

function submitCode(s: TestServer, id: string, code: string) {
  return s.app.inject({
    method: 'POST',
    url: `/auth/code/${encodeURIComponent(id)}/verifications`,
    payload: { code },
    remoteAddress: nextIp(),
  });
}

let seq = 0;
const uniqueEmail = (tag = 'user') => `${tag}.${Date.now().toString(36)}.${++seq}@example.com`;

async function mailTo(email: string): Promise<ReceivedMail> {
  return smtp.waitForMail((m) => m.envelopeTo.includes(email));
}

/** A code that differs from `code` in its first character. */
const wrong = (code: string) => (code[0] === 'A' ? 'B' : 'A') + code.slice(1);

describe('email-code flow over real SMTP', () => {
  let s: Awaited<ReturnType<typeof startServer>>;
  const clock = movableClock();
  beforeEach(async () => {
    s = await startServer({ clock: clock.clock });
  });
  afterEach(async () => {
    await s.close();
  });

  it('mails a code and trades it once for a working admin key (created_via email_code)', async () => {
    const email = uniqueEmail('key');
    const res = await requestCode(s.server, email);
    expect(res.statusCode).toBe(201);
    const { id } = res.json() as { id: string };
    expect(typeof id).toBe('string');

    const mail = await mailTo(email);
    expect(mail.subject).toMatch(/^Your Breeze code: [0-9A-Z]{8}$/);
    const code = codeFromSubject(mail.subject);
    expect(mail.text).toContain(code);

    // hashed at rest: no column of the row holds the code
    const row = await s.server.store.db
      .selectFrom('email_codes')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    expect(JSON.stringify(row)).not.toContain(code);

    const ok = await submitCode(s.server, id, code);
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['cache-control']).toBe('no-store');
    const body = ok.json() as { secret: string; key_id: string };
    expect(body.secret).toMatch(/^brz_[0-9A-Za-z]{46}$/);
    expect(body.key_id).toMatch(/^key_/);

    const me = await s.server.app.inject({ url: '/v1/me', headers: { 'xi-api-key': body.secret } });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({
      user: { email },
      auth: { type: 'api_key', key_id: body.key_id, scopes: ['read', 'write', 'admin'] },
    });
    const key = await s.server.app.inject({
      url: `/v1/api-keys/${body.key_id}`,
      headers: { authorization: `Bearer ${body.secret}` },
    });
    expect(key.json()).toMatchObject({
      key_id: body.key_id,
      created_via: 'email_code',
      scopes: ['read', 'write', 'admin'],
      status: 'active',
      expires_at: null,
    });
    // named after the day it was made (the test may run across midnight)
    const days = [Date.now() - 60_000, Date.now()].map(
      (t) => `email code (${new Date(t).toISOString().slice(0, 10)})`,
    );
    expect(days).toContain(key.json().name);

    // single use
    const again = await submitCode(s.server, id, code);
    expect(again.statusCode).toBe(404);
    expect(again.json().error.code).toBe('NOT_FOUND');
  });

  it('issues an Ed25519 JWT that verifies against the JWKS with node:crypto and works as a Bearer', async () => {
    const email = uniqueEmail('jwt');
    const { id } = (await requestCode(s.server, email, 'jwt')).json() as { id: string };
    const code = codeFromSubject((await mailTo(email)).subject);
    const res = await submitCode(s.server, id, code.toLowerCase());
    expect(res.statusCode).toBe(200);
    const { token, expires_at } = res.json() as { token: string; expires_at: string };
    const [h, p, sig] = token.split('.') as [string, string, string];
    const header = JSON.parse(Buffer.from(h, 'base64url').toString());
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    expect(header).toMatchObject({ alg: 'Ed25519', typ: 'JWT' });

    const jwks = await s.server.app.inject({ url: '/.well-known/jwks.json' });
    expect(jwks.statusCode).toBe(200);
    const { keys } = jwks.json() as { keys: Array<Record<string, string>> };
    const jwk = keys.find((k) => k.kid === header.kid);
    expect(jwk).toEqual({
      kty: 'OKP',
      crv: 'Ed25519',
      x: expect.any(String),
      kid: header.kid,
      alg: 'Ed25519',
      use: 'sig',
    });

    // independent check: the raw Ed25519 signature over "header.payload", with the published key
    const publicKey = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: jwk?.x as string },
      format: 'jwk',
    });
    expect(verifySignature(null, Buffer.from(`${h}.${p}`), publicKey, Buffer.from(sig, 'base64url'))).toBe(
      true,
    );
    const tampered = Buffer.from(JSON.stringify({ ...claims, sub: 'usr_someone_else' })).toString(
      'base64url',
    );
    expect(
      verifySignature(null, Buffer.from(`${h}.${tampered}`), publicKey, Buffer.from(sig, 'base64url')),
    ).toBe(false);

    const user = await s.server.store.users.findByEmail(email);
    expect(claims).toMatchObject({ iss: PUBLIC_URL, aud: 'breeze', sub: user?.id });
    expect(claims.exp - claims.iat).toBe(3600);
    expect(Math.abs(claims.iat * 1000 - Date.now())).toBeLessThan(60_000);
    expect(expires_at).toBe(new Date(claims.exp * 1000).toISOString());

    const me = await s.server.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${token}` } });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toEqual({
      user: { id: user?.id, email },
      auth: { type: 'jwt', scopes: ['read', 'write', 'admin'] },
      // issue 12: a JWT acts in the user's personal organization
      org: { id: expect.stringMatching(/^org_/), name: `${email}'s organization`, role: 'owner' },
    });
    // a JWT may manage keys
    const created = await s.server.app.inject({
      method: 'POST',
      url: '/v1/api-keys',
      headers: { authorization: `Bearer ${token}` },
      payload: { name: 'from jwt', scopes: ['read', 'write'] },
    });
    expect(created.statusCode).toBe(201);

    // a JWT with a byte changed is refused with 401
    const bad = `${h}.${tampered}.${sig}`;
    const refused = await s.server.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${bad}` } });
    expect(refused.statusCode).toBe(401);
    expect(refused.json().error.code).toBe('AUTH_REQUIRED');

    // and it stops working after its hour
    clock.advance(3600_000 + 120_000);
    const late = await s.server.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${token}` } });
    expect(late.statusCode).toBe(401);
  });

  it('accepts the code typed with spaces, dashes and lower case', async () => {
    const email = uniqueEmail('typing');
    const { id } = (await requestCode(s.server, email)).json() as { id: string };
    const code = codeFromSubject((await mailTo(email)).subject);
    const typed = ` ${code.slice(0, 4).toLowerCase()}-${code.slice(4)} `;
    expect((await submitCode(s.server, id, typed)).statusCode).toBe(200);
  });

  it('takes hostname: null as no hostname', async () => {
    const email = uniqueEmail('nullhost');
    const { id } = (await requestCode(s.server, email)).json() as { id: string };
    const code = codeFromSubject((await mailTo(email)).subject);
    const res = await s.server.app.inject({
      method: 'POST',
      url: `/auth/code/${id}/verifications`,
      payload: { code, hostname: null },
      remoteAddress: nextIp(),
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().secret).toMatch(/^brz_/);
  });

  it('answers 401 to a wrong code and kills the code after 5 wrong tries', async () => {
    const email = uniqueEmail('wrong');
    const { id } = (await requestCode(s.server, email)).json() as { id: string };
    const code = codeFromSubject((await mailTo(email)).subject);
    for (let i = 0; i < 5; i++) {
      const res = await submitCode(s.server, id, wrong(code));
      expect(res.statusCode).toBe(401);
      expect(res.json().error).toMatchObject({ code: 'AUTH_REQUIRED', statusCode: 401, category: 'AUTH' });
      expect(res.body).not.toContain(code);
    }
    const dead = await submitCode(s.server, id, code);
    expect(dead.statusCode).toBe(404);
    expect(dead.json().error.code).toBe('NOT_FOUND');
  });

  it('still accepts the right code on the 5th try', async () => {
    const email = uniqueEmail('fifth');
    const { id } = (await requestCode(s.server, email)).json() as { id: string };
    const code = codeFromSubject((await mailTo(email)).subject);
    for (let i = 0; i < 4; i++) expect((await submitCode(s.server, id, wrong(code))).statusCode).toBe(401);
    expect((await submitCode(s.server, id, code)).statusCode).toBe(200);
  });

  it('gives a burst of parallel guesses no more than 5 comparisons', async () => {
    const email = uniqueEmail('burst');
    const { id } = (await requestCode(s.server, email)).json() as { id: string };
    const code = codeFromSubject((await mailTo(email)).subject);
    const guesses = Array.from({ length: 25 }, (_, i) => `ZZZZZ${String(i).padStart(3, '0')}`);
    const results = await Promise.all(guesses.map((g) => submitCode(s.server, id, g)));
    const statuses = results.map((r) => r.statusCode);
    expect(statuses.filter((x) => x === 401)).toHaveLength(5);
    expect(statuses.filter((x) => x === 404)).toHaveLength(20);
    expect((await submitCode(s.server, id, code)).statusCode).toBe(404);
  });

  it('expires a code after 10 minutes', async () => {
    const email = uniqueEmail('expiry');
    const first = (await requestCode(s.server, email)).json() as { id: string };
    const firstCode = codeFromSubject((await mailTo(email)).subject);
    clock.advance(9 * 60_000 + 50_000);
    expect((await submitCode(s.server, first.id, firstCode)).statusCode).toBe(200);

    const email2 = uniqueEmail('expiry2');
    const second = (await requestCode(s.server, email2)).json() as { id: string };
    const secondCode = codeFromSubject((await mailTo(email2)).subject);
    clock.advance(10 * 60_000);
    const res = await submitCode(s.server, second.id, secondCode);
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('NOT_FOUND');
  });

  it('documents the routes in the OpenAPI document', async () => {
    const doc = (await s.server.app.inject({ url: '/openapi.json' })).json() as {
      paths: Record<string, object>;
    };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/auth/code', '/auth/code/{id}/verifications', '/.well-known/jwks.json']),
    );
  });

  it('answers 404 to an unknown id', async () => {
    const res = await submitCode(s.server, 'code_doesnotexist', 'ABCD1234');
    expect(res.statusCode).toBe(404);
    expect(res.json().error).toMatchObject({ code: 'NOT_FOUND', request_id: res.headers['x-request-id'] });
  });

  it('does not redeem a browser sign-in code here (and leaves it usable)', async () => {
    const codes = new EmailCodes(s.server.app.breeze);
    const email = uniqueEmail('browser');
    const id = await codes.issue(email, 'browser', true);
    const code = codeFromSubject((await mailTo(email)).subject);
    expect((await submitCode(s.server, id, code)).statusCode).toBe(404);
    expect(await codes.verify(id, code)).toEqual({ ok: true, email, purpose: 'browser' });
  });

  it('rejects malformed input with 400 VALIDATION_FAILED', async () => {
    for (const payload of [
      { email: 'not-an-email', type: 'api_key' },
      { email: 'a@b.co', type: 'password' },
      { email: 'a@b.co' },
      { email: 42, type: 'jwt' },
    ]) {
      const res = await s.server.app.inject({
        method: 'POST',
        url: '/auth/code',
        payload,
        remoteAddress: nextIp(),
      });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION_FAILED');
    }
    const noCode = await s.server.app.inject({
      method: 'POST',
      url: '/auth/code/code_x/verifications',
      payload: {},
      remoteAddress: nextIp(),
    });
    expect(noCode.statusCode).toBe(400);
  });
});

describe('known and unknown emails look the same', () => {
  it('same status, same body shape, same database work (signup open)', async () => {
    const s = await startServer();
    try {
      const known = uniqueEmail('known');
      await s.server.store.users.ensure(known);
      const unknown = uniqueEmail('unknown');
      const a = await requestCode(s.server, known);
      const b = await requestCode(s.server, unknown);
      expect(a.statusCode).toBe(201);
      expect(b.statusCode).toBe(201);
      expect(Object.keys(a.json())).toEqual(Object.keys(b.json()));
      expect(a.json().id.length).toBe(b.json().id.length);
      expect(Object.keys(a.headers).sort()).toEqual(Object.keys(b.headers).sort());
      // open signup: both get a mail, and the unknown one becomes an account on verification only
      await mailTo(known);
      const code = codeFromSubject((await mailTo(unknown)).subject);
      expect(await s.server.store.users.findByEmail(unknown)).toBeUndefined();
      expect((await submitCode(s.server, b.json().id, code)).statusCode).toBe(200);
      expect(await s.server.store.users.findByEmail(unknown)).toBeDefined();
    } finally {
      await s.close();
    }
  });

  it('signup closed: an unknown email gets the same 201 but no mail and no account', async () => {
    const s = await startServer({ signup: 'closed' });
    try {
      const known = uniqueEmail('member');
      await s.server.store.users.ensure(known);
      const stranger = uniqueEmail('stranger');
      const b = await requestCode(s.server, stranger, 'jwt');
      const a = await requestCode(s.server, known, 'jwt');
      expect([a.statusCode, b.statusCode]).toEqual([201, 201]);
      expect(Object.keys(b.json())).toEqual(['id']);
      expect(b.json().id.length).toBe(a.json().id.length);
      // the stranger's request went first; once the member's mail is in, the stranger's would be too
      const code = codeFromSubject((await mailTo(known)).subject);
      await new Promise((r) => setTimeout(r, 200));
      expect(smtp.mails.some((m) => m.envelopeTo.includes(stranger))).toBe(false);
      expect(await s.server.store.users.findByEmail(stranger)).toBeUndefined();
      // guessing the stranger's code gets nowhere and creates nothing
      expect([401, 404]).toContain((await submitCode(s.server, b.json().id, 'AAAAAAAA')).statusCode);
      expect(await s.server.store.users.findByEmail(stranger)).toBeUndefined();
      // the member signs in as usual
      const ok = await submitCode(s.server, a.json().id, code);
      expect(ok.statusCode).toBe(200);
      expect(ok.json().token).toBeTruthy();
    } finally {
      await s.close();
    }
  });

  it('signup closed: answers in comparable time even when the SMTP server is slow', async () => {
    // With a mail server that takes 300 ms per mail, a server that waited for the mail would answer
    // known emails 300 ms slower than unknown ones (which get no mail).
    const slow = await startSmtpServer({ delayMs: 300 });
    const mailer = new SmtpMailer(slow.url);
    const server = await startTestServer({ mailer, config: { signup: 'closed' } });
    try {
      const known = uniqueEmail('timed');
      await server.store.users.ensure(known);
      const time = async (email: string) => {
        const t0 = performance.now();
        const res = await requestCode(server, email);
        expect(res.statusCode).toBe(201);
        return performance.now() - t0;
      };
      const knownTimes: number[] = [];
      const unknownTimes: number[] = [];
      for (let i = 0; i < 4; i++) {
        knownTimes.push(await time(known));
        unknownTimes.push(await time(uniqueEmail('nobody')));
      }
      const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
      expect(Math.abs(median(knownTimes) - median(unknownTimes))).toBeLessThan(150);
      // the mails did go out to the member (4 of them), none to the others
      await slow.waitForMail(() => slow.mails.length >= 4, 15_000);
      expect(slow.mails.every((m) => m.envelopeTo.includes(known))).toBe(true);
    } finally {
      await server.close();
      await mailer.close();
      await slow.close();
    }
  });
});

describe('same database work for known and unknown emails', () => {
  for (const signup of ['open', 'closed'] as const) {
    it(`runs the same queries (signup ${signup})`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'breeze-codes-'));
      let log: string[] | null = null;
      const store = new SqliteStore(new BetterSqlite3(join(dir, 'breeze.db')), {
        log: (event) => void log?.push(event.query.sql),
      });
      await store.migrate();
      const mailer = new SmtpMailer(smtp.url);
      const server = await startTestServer({ store, mailer, config: { signup } });
      try {
        const known = uniqueEmail('q-known');
        await store.users.ensure(known);
        const queriesFor = async (email: string) => {
          log = [];
          expect((await requestCode(server, email)).statusCode).toBe(201);
          const seen = log;
          log = null;
          return seen;
        };
        const a = await queriesFor(known);
        const b = await queriesFor(uniqueEmail('q-unknown'));
        expect(a.length).toBeGreaterThanOrEqual(2);
        expect(b).toEqual(a);
      } finally {
        await server.close();
        await store.close();
        await mailer.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

describe('mail failures', () => {
  it('are logged without the code, and the answer stays 201', async () => {
    const refusing = await startSmtpServer({ rejectRecipients: true });
    const mailer = new SmtpMailer(refusing.url);
    const lines: string[] = [];
    const server = await startTestServer({
      mailer,
      logger: { level: 'info', stream: { write: (l: string) => void lines.push(l) } },
    });
    let captured = '';
    const spy = mailer.send.bind(mailer);
    mailer.send = async (m) => {
      captured = m.subject;
      return spy(m);
    };
    try {
      const res = await requestCode(server, uniqueEmail('bounce'));
      expect(res.statusCode).toBe(201);
      await server.app.close();
      const code = codeFromSubject(captured);
      const log = lines.join('');
      expect(log).toContain('could not send the code mail');
      expect(log).toContain('"smtp_status":550');
      expect(log).not.toContain(code);
    } finally {
      await server.close();
      await mailer.close();
      await refusing.close();
    }
  });
});
