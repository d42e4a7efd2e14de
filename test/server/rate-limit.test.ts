import type { LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { SmtpMailer } from '../../src/server/mail/smtp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';

/** A 429 as API.md documents it: RATE_LIMITED in the error shape, with Retry-After in seconds. */
function expectRateLimited(res: LightMyRequestResponse, maxRetryAfter: number): number {
  expect(res.statusCode).toBe(429);
  const retryAfter = res.headers['retry-after'];
  expect(String(retryAfter)).toMatch(/^\d+$/);
  const seconds = Number(retryAfter);
  expect(seconds).toBeGreaterThanOrEqual(1);
  expect(seconds).toBeLessThanOrEqual(maxRetryAfter);
  expect(res.json()).toEqual({
    error: {
      code: 'RATE_LIMITED',
      message: expect.any(String),
      statusCode: 429,
      category: 'RATE_LIMIT',
      request_id: res.headers['x-request-id'],
    },
  });
  return seconds;
}

let server: TestServer | undefined;
let smtp: TestSmtpServer | undefined;
let mailer: SmtpMailer | undefined;
afterEach(async () => {
  await server?.close();
  await mailer?.close();
  await smtp?.close();
  server = undefined;
  mailer = undefined;
  smtp = undefined;
});

async function withSmtp(config: Parameters<typeof startTestServer>[0] = {}) {
  smtp = await startSmtpServer();
  mailer = new SmtpMailer(smtp.url);
  server = await startTestServer({ ...config, mailer });
  return { server, smtp };
}

describe('per-key limit on API-key requests', () => {
  it('answers 429 RATE_LIMITED with Retry-After once a key is over its limit, per key', async () => {
    server = await startTestServer({ config: { rateLimitPerKey: 3 } });
    const a = await server.seedKey({ email: 'a@example.com' });
    const b = await server.seedKey({ email: 'b@example.com' });
    for (let i = 0; i < 3; i++) {
      const ok = await server.app.inject({ url: '/v1/me', headers: { 'xi-api-key': a.apiKey } });
      expect(ok.statusCode).toBe(200);
    }
    const limited = await server.app.inject({ url: '/v1/me', headers: { 'xi-api-key': a.apiKey } });
    expectRateLimited(limited, 60);
    // the same key as a Bearer is the same key
    expectRateLimited(
      await server.app.inject({ url: '/v1/api-keys', headers: { authorization: `Bearer ${a.apiKey}` } }),
      60,
    );
    // another key is not affected
    expect((await server.app.inject({ url: '/v1/me', headers: { 'xi-api-key': b.apiKey } })).statusCode).toBe(
      200,
    );
  });

  it('is off with rateLimitPerKey 0', async () => {
    server = await startTestServer({ config: { rateLimitPerKey: 0 } });
    const a = await server.seedKey();
    for (let i = 0; i < 20; i++) {
      expect(
        (await server.app.inject({ url: '/v1/me', headers: { 'xi-api-key': a.apiKey } })).statusCode,
      ).toBe(200);
    }
  });
});

describe('POST /auth/code limits', () => {
  const post = (s: TestServer, email: string, ip: string) =>
    s.app.inject({
      method: 'POST',
      url: '/auth/code',
      payload: { email, type: 'api_key' },
      remoteAddress: ip,
    });

  it('allows 10 requests a minute per IP', async () => {
    const { server: s } = await withSmtp();
    for (let i = 0; i < 10; i++)
      expect((await post(s, `ip${i}@example.com`, '10.1.1.1')).statusCode).toBe(201);
    expectRateLimited(await post(s, 'ip10@example.com', '10.1.1.1'), 60);
    expect((await post(s, 'ip10@example.com', '10.1.1.2')).statusCode).toBe(201);
  });

  it('answers a malformed body 400 without using up the address budget for real codes', async () => {
    const { server: s } = await withSmtp();
    const bad = (payload: unknown) =>
      s.app.inject({
        method: 'POST',
        url: '/auth/code',
        payload: payload as object,
        remoteAddress: '10.4.0.1',
      });
    for (let i = 0; i < 12; i++) {
      const res = await bad(i % 2 ? { email: 5, type: 'api_key' } : { email: 'a@example.com' });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION_FAILED');
    }
    for (let i = 0; i < 10; i++)
      expect((await post(s, `bad${i}@example.com`, '10.4.0.1')).statusCode).toBe(201);
    expectRateLimited(await post(s, 'bad10@example.com', '10.4.0.1'), 60);
  });

  it('counts a request refused per IP against no email', async () => {
    const { server: s } = await withSmtp();
    for (let i = 0; i < 10; i++)
      expect((await post(s, `f${i}@example.com`, '10.5.0.1')).statusCode).toBe(201);
    // over the IP limit: these must not spend victim@'s five codes
    for (let i = 0; i < 6; i++) expectRateLimited(await post(s, 'victim@example.com', '10.5.0.1'), 60);
    for (let i = 0; i < 5; i++)
      expect((await post(s, 'victim@example.com', `10.5.1.${i}`)).statusCode).toBe(201);
  });

  it('allows 5 requests per 10 minutes per email, known or not, case-insensitively, and sends no mail past it', async () => {
    const { server: s, smtp: mail } = await withSmtp();
    await s.store.users.ensure('known@example.com');
    for (const email of ['known@example.com', 'unknown@example.com']) {
      for (let i = 0; i < 5; i++) {
        const cased = i % 2 ? email.toUpperCase() : email;
        expect((await post(s, cased, `10.2.${i}.1`)).statusCode).toBe(201);
      }
      const seconds = expectRateLimited(await post(s, email, '10.2.9.9'), 600);
      expect(seconds).toBeGreaterThan(60);
    }
    // another email from the same addresses is fine
    expect((await post(s, 'other@example.com', '10.2.0.1')).statusCode).toBe(201);
    await mail.waitForMail(() => mail.mails.length >= 11);
    await new Promise((r) => setTimeout(r, 200));
    expect(mail.mails.filter((m) => m.envelopeTo.includes('known@example.com'))).toHaveLength(5);
    expect(mail.mails.filter((m) => m.envelopeTo.includes('unknown@example.com'))).toHaveLength(5);
  });
});

describe('POST /auth/code/:id/verifications limit', () => {
  it('allows 30 tries a minute per IP', async () => {
    server = await startTestServer();
    const verify = (ip: string) =>
      server?.app.inject({
        method: 'POST',
        url: '/auth/code/code_nope/verifications',
        payload: { code: 'AAAAAAAA' },
        remoteAddress: ip,
      }) as Promise<LightMyRequestResponse>;
    for (let i = 0; i < 30; i++) expect((await verify('10.3.0.1')).statusCode).toBe(404);
    expectRateLimited(await verify('10.3.0.1'), 60);
    expect((await verify('10.3.0.2')).statusCode).toBe(404);
  });

  it('does not count a malformed body (400) as a try', async () => {
    server = await startTestServer();
    const s = server;
    for (let i = 0; i < 31; i++) {
      const res = await s.app.inject({
        method: 'POST',
        url: '/auth/code/code_nope/verifications',
        payload: { code: 12345678 },
        remoteAddress: '10.6.0.1',
      });
      expect(res.statusCode).toBe(400);
    }
    const tries = await s.app.inject({
      method: 'POST',
      url: '/auth/code/code_nope/verifications',
      payload: { code: 'AAAAAAAA' },
      remoteAddress: '10.6.0.1',
    });
    expect(tries.statusCode).toBe(404);
  });
});
