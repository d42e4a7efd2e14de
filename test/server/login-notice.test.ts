import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { SmtpMailer } from '../../src/server/mail/smtp.js';
import { InjectBrowser } from '../helpers/browser.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { type ReceivedMail, startSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';

/**
 * Issue 14: when a login mints a key, the user gets a notice through a real SMTP server naming the
 * hostname, IP, time and key, and how to revoke it; sent in the background (a slow or refusing
 * relay never delays or fails the login) and holding no secret.
 */

let smtp: TestSmtpServer | undefined;
let server: TestServer | undefined;
let mailer: SmtpMailer | undefined;
afterEach(async () => {
  await server?.close();
  await mailer?.close();
  await smtp?.close();
  server = undefined;
  mailer = undefined;
  smtp = undefined;
});

async function setup(opts: Parameters<typeof startSmtpServer>[0] = {}) {
  smtp = await startSmtpServer(opts);
  mailer = new SmtpMailer(smtp.url);
  server = await startTestServer({ mailer, config: { publicUrl: 'http://127.0.0.1:4455' } });
  return { smtp, server };
}

const isNotice = (m: ReceivedMail) => m.subject.startsWith('New Breeze login');

function lastCode(s: TestSmtpServer, email: string) {
  return () =>
    [...s.mails]
      .reverse()
      .find((m) => m.envelopeTo.includes(email) && m.subject.startsWith('Your Breeze code: '))
      ?.subject.replace('Your Breeze code: ', '');
}

/** A device-mode CLI login approved in a browser, exchanged from `ip`. */
async function deviceLogin(s: TestServer, mails: TestSmtpServer, email: string, ip: string) {
  const verifier = randomBytes(32).toString('base64url');
  const started = await s.app.inject({
    method: 'POST',
    url: '/v1/cli/logins',
    payload: {
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      client_name: 'breeze/0.1.0',
      hostname: 'ada-laptop',
    },
  });
  const login = started.json() as { login_id: string; user_code: string };
  const b = new InjectBrowser(s.app);
  await b.signIn(email, lastCode(mails, email));
  expect((await b.decide(login.user_code, 'approve')).statusCode).toBe(200);
  const t0 = Date.now();
  const res = await s.app.inject({
    method: 'POST',
    url: `/v1/cli/logins/${login.login_id}/exchange`,
    payload: { code_verifier: verifier },
    remoteAddress: ip,
  });
  return { res, ms: Date.now() - t0, verifier, userCode: login.user_code };
}

describe('new-login notices', () => {
  it('a CLI login that mints a key mails hostname, IP, time, the key and how to revoke it; no secret', async () => {
    const { smtp, server } = await setup();
    const before = Date.now();
    const { res, verifier, userCode } = await deviceLogin(server, smtp, 'ada@example.com', '203.0.113.50');
    expect(res.statusCode).toBe(200);
    const { api_key: apiKey, key } = res.json() as {
      api_key: string;
      key: { key_id: string; prefix: string };
    };
    const mail = await smtp.waitForMail(isNotice);
    expect(mail.envelopeTo).toEqual(['ada@example.com']);
    expect(mail.subject).toBe('New Breeze login from ada-laptop');
    expect(mail.text).toContain('Host:    ada-laptop');
    expect(mail.text).toContain('IP:      203.0.113.50');
    expect(mail.text).toContain(`id ${key.key_id}`);
    expect(mail.text).toContain(`${key.prefix}…`);
    expect(mail.text).toContain('ada-laptop (breeze login)');
    expect(mail.text).toContain(`breeze keys disable ${key.key_id}`);
    expect(mail.text).toContain(`POST http://127.0.0.1:4455/v1/api-keys/${key.key_id}/disable`);
    const at = /Time: +(\S+)/.exec(mail.text)?.[1] ?? '';
    expect(Date.parse(at)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(at)).toBeLessThanOrEqual(Date.now() + 1000);
    for (const secret of [apiKey, apiKey.slice(12), verifier, userCode, userCode.replace('-', '')]) {
      expect(mail.raw).not.toContain(secret);
    }
  });

  it('an email-code login that mints a key gets one (with the hostname the CLI sent); a JWT gets none', async () => {
    const { smtp, server } = await setup();
    const trade = async (type: 'api_key' | 'jwt') => {
      const before = lastCode(smtp, 'bob@example.com')();
      const start = await server.app.inject({
        method: 'POST',
        url: '/auth/code',
        payload: { email: 'bob@example.com', type },
      });
      const { id } = start.json() as { id: string };
      let code: string | undefined;
      for (let i = 0; i < 500 && (!code || code === before); i++) {
        await new Promise((r) => setTimeout(r, 10));
        code = lastCode(smtp, 'bob@example.com')();
      }
      return server.app.inject({
        method: 'POST',
        url: `/auth/code/${id}/verifications`,
        payload: { code, hostname: 'bob-desktop' },
        remoteAddress: '198.51.100.77',
        headers: { 'user-agent': 'breeze/0.1.0' },
      });
    };
    const jwt = await trade('jwt');
    expect(jwt.statusCode).toBe(200);
    const minted = await trade('api_key');
    expect(minted.statusCode).toBe(200);
    const { secret, key_id: keyId } = minted.json() as { secret: string; key_id: string };
    const mail = await smtp.waitForMail(isNotice);
    expect(mail.subject).toBe('New Breeze login from bob-desktop');
    expect(mail.text).toContain('IP:      198.51.100.77');
    expect(mail.text).toContain(`breeze keys disable ${keyId}`);
    expect(mail.text).toContain('Client:  breeze/0.1.0');
    expect(mail.raw).not.toContain(secret);
    await new Promise((r) => setTimeout(r, 200));
    expect(smtp.mails.filter(isNotice)).toHaveLength(1);
  });

  it('a slow relay does not delay the login, and a refusing one does not fail it', async () => {
    const slow = await setup({ delayMs: 2500 });
    // the sign-in code mail is slow as well: the browser waits for it, the exchange must not
    const { res, ms } = await deviceLogin(slow.server, slow.smtp, 'cy@example.com', '203.0.113.51');
    expect(res.statusCode).toBe(200);
    expect(ms).toBeLessThan(1500);
    expect((await slow.smtp.waitForMail(isNotice, 10_000)).envelopeTo).toEqual(['cy@example.com']);
    await server?.close();
    // a relay that refuses the notice (codes still go through)
    const relay = new SmtpMailer(slow.smtp.url);
    let refused = 0;
    server = await startTestServer({
      mailer: {
        async send(m) {
          if (m.subject.startsWith('New Breeze login')) {
            refused++;
            throw Object.assign(new Error('550 mailbox unavailable'), { responseCode: 550 });
          }
          await relay.send(m);
        },
      },
    });
    try {
      const refusedLogin = await deviceLogin(server, slow.smtp, 'cy@example.com', '203.0.113.52');
      expect(refusedLogin.res.statusCode).toBe(200);
      for (let i = 0; i < 100 && refused === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(refused).toBe(1);
    } finally {
      await relay.close();
    }
  }, 60_000);

  it('no notice for a key made through the API (not a login)', async () => {
    const { smtp, server } = await setup();
    const seeded = await server.seedKey({ email: 'dee@example.com' });
    const res = await server.app.inject({
      method: 'POST',
      url: '/v1/api-keys',
      headers: { 'xi-api-key': seeded.apiKey },
      payload: { name: 'ci' },
    });
    expect(res.statusCode).toBe(201);
    await new Promise((r) => setTimeout(r, 300));
    expect(smtp.mails).toHaveLength(0);
  });
});
