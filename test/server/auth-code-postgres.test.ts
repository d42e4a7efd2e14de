/**
 * The email-code flow over PostgreSQL (the store deployments share between instances): two server
 * instances on one database, a code requested on one and redeemed on the other, JWTs signed by one
 * accepted by the other, and the 5-wrong-tries limit counted across both.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpMailer } from '../../src/server/mail/smtp.js';
import { openStore, type Store } from '../../src/server/store/index.js';
import { postgresAvailability, startPostgres, type TestPostgres, uniqueDbName } from '../helpers/postgres.js';
import { requirePart } from '../helpers/require.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { codeFromSubject, startSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';

const avail = postgresAvailability();
const skip = requirePart('PostgreSQL', avail.available, avail.why);

describe.skipIf(skip)('email-code flow on PostgreSQL, two instances', () => {
  let pgs: TestPostgres;
  let smtp: TestSmtpServer;
  let mailer: SmtpMailer;
  const stores: Store[] = [];
  let a: TestServer;
  let b: TestServer;
  let ip = 0;

  beforeAll(async () => {
    pgs = await startPostgres();
    smtp = await startSmtpServer();
    mailer = new SmtpMailer(smtp.url);
    const url = await pgs.createDatabase(uniqueDbName('authcode'));
    for (let i = 0; i < 2; i++) stores.push(await openStore({ databaseUrl: url }));
    const config = { publicUrl: 'https://breeze.example.test' };
    a = await startTestServer({ store: stores[0], mailer, config });
    b = await startTestServer({ store: stores[1], mailer, config });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    for (const s of stores) await s.close();
    await mailer?.close();
    await smtp?.close();
    await pgs?.stop();
  });

  const request = (s: TestServer, email: string, type: 'api_key' | 'jwt') =>
    s.app.inject({
      method: 'POST',
      url: '/auth/code',
      payload: { email, type },
      remoteAddress: `10.9.0.${++ip}`,
    });
  const submit = (s: TestServer, id: string, code: string) =>
    s.app.inject({
      method: 'POST',
      url: `/auth/code/${id}/verifications`,
      payload: { code },
      remoteAddress: `10.9.1.${++ip}`,
    });
  const codeFor = async (email: string) =>
    codeFromSubject((await smtp.waitForMail((m) => m.envelopeTo.includes(email))).subject);

  it('a code from one instance is redeemed on the other, once', async () => {
    const { id } = (await request(a, 'pg-key@example.com', 'api_key')).json() as { id: string };
    const code = await codeFor('pg-key@example.com');
    const res = await submit(b, id, code);
    expect(res.statusCode).toBe(200);
    const { secret } = res.json() as { secret: string };
    const me = await a.app.inject({ url: '/v1/me', headers: { 'xi-api-key': secret } });
    expect(me.json()).toMatchObject({ user: { email: 'pg-key@example.com' }, auth: { type: 'api_key' } });
    expect((await submit(a, id, code)).statusCode).toBe(404);
  });

  it('both instances publish one JWKS and accept each other’s JWTs', async () => {
    const { id } = (await request(a, 'pg-jwt@example.com', 'jwt')).json() as { id: string };
    const { token } = (await submit(a, id, await codeFor('pg-jwt@example.com'))).json() as { token: string };
    const me = await b.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${token}` } });
    expect(me.statusCode).toBe(200);
    expect(me.json().auth).toEqual({ type: 'jwt', scopes: ['read', 'write', 'admin'] });
    const ja = (await a.app.inject({ url: '/.well-known/jwks.json' })).json();
    const jb = (await b.app.inject({ url: '/.well-known/jwks.json' })).json();
    expect(ja).toEqual(jb);
    // a rotation on one instance: the old token keeps working on both, new tokens use the new key
    const { kid } = await b.app.jwtService.rotateSigningKey();
    expect(
      (await a.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${token}` } })).statusCode,
    ).toBe(200);
    const before = [...smtp.mails];
    const again = (await request(b, 'pg-jwt@example.com', 'jwt')).json() as { id: string };
    const mail = await smtp.waitForMail(
      (m) => m.envelopeTo.includes('pg-jwt@example.com') && !before.includes(m),
    );
    const code2 = codeFromSubject(mail.subject);
    const fresh = (await submit(b, again.id, code2)).json() as { token: string };
    const header = JSON.parse(Buffer.from(fresh.token.split('.')[0] as string, 'base64url').toString());
    expect(header.kid).toBe(kid);
    expect(
      (await a.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${fresh.token}` } })).statusCode,
    ).toBe(200);
  });

  it('wrong tries on both instances add up to 5', async () => {
    const { id } = (await request(a, 'pg-wrong@example.com', 'api_key')).json() as { id: string };
    const code = await codeFor('pg-wrong@example.com');
    const bad = (code[0] === 'A' ? 'B' : 'A') + code.slice(1);
    const statuses = await Promise.all(
      [a, b, a, b, a, b, a].map((s) => submit(s, id, bad).then((r) => r.statusCode)),
    );
    expect(statuses.filter((x) => x === 401)).toHaveLength(5);
    expect(statuses.filter((x) => x === 404)).toHaveLength(2);
    expect((await submit(b, id, code)).statusCode).toBe(404);
  });
});
