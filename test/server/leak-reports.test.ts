import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../src/core/api-key.js';
import { BASE62 } from '../../src/core/base62.js';
import { SmtpMailer } from '../../src/server/mail/smtp.js';
import { LEAK_ANSWER_FLOOR_MS, LEAK_REPORTS_PER_IP } from '../../src/server/services/leaks.js';
import { testEngines } from '../helpers/engines.js';
import type { TestServer } from '../helpers/server.js';
import { type ReceivedMail, startSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';

/**
 * PLATFORM.md "Leak reports", black-box over HTTP on both engines: the same answer whether or not a
 * key exists, 400 for a malformed key, 429 past the per-IP limit, a live key refused at once
 * (policy `disable`) or left working and its creator mailed (policy `notify`).
 */
const eng = testEngines();
let smtp: TestSmtpServer;
beforeAll(async () => {
  smtp = await startSmtpServer();
});
afterAll(async () => {
  await smtp.close();
  await eng.stop();
});

let ipCounter = 0;
/** a fresh client address, so the per-IP limit stays out of the way except where it is tested */
const nextIp = () => `10.9.${Math.floor(++ipCounter / 250)}.${(ipCounter % 250) + 1}`;

/** `key` with its last (checksum) character changed: the right shape, a wrong checksum */
function badChecksum(key: string): string {
  const last = key.at(-1) as string;
  return key.slice(0, -1) + BASE62[(BASE62.indexOf(last) + 1) % 62];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

for (const e of eng.list) {
  describe.skipIf(e.skip)(`leak reports (${e.name})`, () => {
    let s: TestServer;
    let mailer: SmtpMailer;
    beforeAll(async () => {
      mailer = new SmtpMailer(smtp.url);
      s = await e.startServer({ mailer, config: { publicUrl: 'https://breeze.example.test' } });
    });
    afterAll(async () => {
      await s?.close();
      await mailer?.close();
    });

    const report = (payload: object, ip = nextIp()) =>
      s.app.inject({ method: 'POST', url: '/v1/keys/leaks', payload, remoteAddress: ip });
    const me = (apiKey: string) =>
      s.app.inject({ url: '/v1/me', headers: { 'xi-api-key': apiKey }, remoteAddress: nextIp() });
    const mailsTo = (email: string) => smtp.mails.filter((m) => m.envelopeTo.includes(email));

    it('answers 202 {"received": true} alike for a live key and an unknown one', async () => {
      const live = await s.seedKey({ email: `same-${e.name}@example.com` });
      const a = await report({ key: live.apiKey });
      const b = await report({ key: generateApiKey() });
      expect(a.statusCode).toBe(202);
      expect(b.statusCode).toBe(202);
      expect(a.body).toBe('{"received":true}');
      expect(b.body).toBe(a.body);
      const shape = (h: Record<string, unknown>) =>
        Object.keys(h)
          .filter((k) => !['date', 'x-request-id', 'ratelimit-remaining', 'ratelimit-reset'].includes(k))
          .sort();
      expect(shape(b.headers)).toEqual(shape(a.headers));
    });

    it('disables a live key at once, mails its creator the prefix only, and says nothing more to the reporter', async () => {
      const email = `owner-${e.name}@example.com`;
      const live = await s.seedKey({ email, name: 'ci deploy' });
      expect((await me(live.apiKey)).statusCode).toBe(200); // cached by the verification cache now
      const res = await report({ key: live.apiKey, source: 'https://github.com/acme/api/blob/main/.env#L3' });
      expect(res.statusCode).toBe(202);
      // refused by the very next request (the cache entry is dropped with the change)
      expect((await me(live.apiKey)).statusCode).toBe(401);
      const key = await s.store.keys.get(live.keyId);
      expect(key?.disabled_at).not.toBeNull();
      const mail: ReceivedMail = await smtp.waitForMail((m) => m.envelopeTo.includes(email));
      expect(mail.subject).toBe(`Your Breeze API key ${live.apiKey.slice(0, 12)} was reported leaked`);
      expect(mail.text).toContain(live.keyId);
      expect(mail.text).toContain('ci deploy');
      expect(mail.text).toContain('https://github.com/acme/api/blob/main/.env#L3');
      expect(mail.text).toContain('disabled');
      // what it tells the creator to do works on a disabled key: not a rotation (409), a new key
      expect(mail.text).not.toContain('keys rotate');
      expect(mail.text).toContain(`breeze keys delete ${live.keyId}`);
      expect(mail.text).toMatch(
        /breeze keys create --name <name> --scopes read,write,admin --project proj_\w+/,
      );
      expect(mail.raw).not.toContain(live.apiKey);
      expect(mail.raw).not.toContain(live.apiKey.slice(12));
      // key.leaked and key.disabled are in the audit log, with the source but without the key
      const reader = await s.seedKey({ email });
      const audit = await s.app.inject({
        url: `/v1/audit-events?key_id=${live.keyId}`,
        headers: { 'xi-api-key': reader.apiKey },
      });
      expect(audit.statusCode, audit.body).toBe(200);
      const events = audit.json().data as {
        action: string;
        target: object;
        actor: object;
        details: object;
      }[];
      const leaked = events.find((ev) => ev.action === 'key.leaked');
      expect(leaked).toMatchObject({
        target: { type: 'key', id: live.keyId },
        actor: { type: 'system' },
        details: {
          policy: 'disable',
          disabled: true,
          source: 'https://github.com/acme/api/blob/main/.env#L3',
        },
      });
      expect(events.some((ev) => ev.action === 'key.disabled')).toBe(true);
      expect(audit.body).not.toContain(live.apiKey.slice(12));
      // a second report of the now disabled key: same answer, no second mail
      expect((await report({ key: live.apiKey })).statusCode).toBe(202);
      await new Promise((r) => setTimeout(r, 300));
      expect(mailsTo(email)).toHaveLength(1);
    });

    it('under the notify policy leaves the key working but mails its creator', async () => {
      const email = `notify-${e.name}@example.com`;
      const owner = await s.seedKey({ email });
      const { data } = (
        await s.app.inject({ url: '/v1/orgs', headers: { 'xi-api-key': owner.apiKey } })
      ).json();
      const orgId = data[0].id as string;
      const patched = await s.app.inject({
        method: 'PATCH',
        url: `/v1/orgs/${orgId}`,
        headers: { 'xi-api-key': owner.apiKey },
        payload: { leak_policy: 'notify' },
      });
      expect(patched.statusCode, patched.body).toBe(200);
      expect(patched.json()).toMatchObject({ id: orgId, role: 'owner', leak_policy: 'notify' });
      const got = await s.app.inject({ url: `/v1/orgs/${orgId}`, headers: { 'xi-api-key': owner.apiKey } });
      expect(got.json().leak_policy).toBe('notify');

      const leaked = await s.seedKey({ email, name: 'notify me' });
      expect((await report({ key: leaked.apiKey })).statusCode).toBe(202);
      const mail = await smtp.waitForMail((m) => m.envelopeTo.includes(email));
      expect(mail.subject).toContain(leaked.apiKey.slice(0, 12));
      expect(mail.text).toContain('notify');
      expect(mail.raw).not.toContain(leaked.apiKey);
      expect((await me(leaked.apiKey)).statusCode).toBe(200);
      expect((await s.store.keys.get(leaked.keyId))?.disabled_at).toBeNull();

      // back to disable: the next report disables
      const back = await s.app.inject({
        method: 'PATCH',
        url: `/v1/orgs/${orgId}`,
        headers: { 'xi-api-key': owner.apiKey },
        payload: { leak_policy: 'disable' },
      });
      expect(back.json().leak_policy).toBe('disable');
      expect((await report({ key: leaked.apiKey })).statusCode).toBe(202);
      expect((await me(leaked.apiKey)).statusCode).toBe(401);
    });

    it('stores the source without credentials, query string or key', async () => {
      const email = `source-${e.name}@example.com`;
      const leaked = await s.seedKey({ email });
      const reader = await s.seedKey({ email });
      const source = `https://bob:hunter2@gist.example.com/x/${leaked.apiKey}/raw?token=s3cr3t#frag`;
      expect((await report({ key: leaked.apiKey, source })).statusCode).toBe(202);
      const audit = await s.app.inject({
        url: `/v1/audit-events?action=key.leaked&key_id=${leaked.keyId}`,
        headers: { 'xi-api-key': reader.apiKey },
      });
      const [event] = audit.json().data;
      expect(event.details.source).toBe(`https://gist.example.com/x/${leaked.apiKey.slice(0, 12)}…/raw`);
      for (const secret of ['hunter2', 's3cr3t', 'frag', leaked.apiKey.slice(12)]) {
        expect(audit.body).not.toContain(secret);
      }
      const mail = await smtp.waitForMail((m) => m.envelopeTo.includes(email));
      expect(mail.raw).not.toContain('hunter2');
      expect(mail.raw).not.toContain(leaked.apiKey.slice(12));
    });

    it('refuses a bad or missing leak policy with 400, and a non-member with 404', async () => {
      const owner = await s.seedKey({ email: `policy-${e.name}@example.com` });
      const other = await s.seedKey({ email: `stranger-${e.name}@example.com` });
      const { data } = (
        await s.app.inject({ url: '/v1/orgs', headers: { 'xi-api-key': owner.apiKey } })
      ).json();
      const url = `/v1/orgs/${data[0].id}`;
      for (const payload of [{ leak_policy: 'delete' }, { leak_policy: 1 }, {}, { name: 'x' }]) {
        const res = await s.app.inject({
          method: 'PATCH',
          url,
          headers: { 'xi-api-key': owner.apiKey },
          payload,
        });
        expect(res.statusCode, JSON.stringify(payload)).toBe(400);
        expect(res.json().error.code).toBe('VALIDATION_FAILED');
      }
      const res = await s.app.inject({
        method: 'PATCH',
        url,
        headers: { 'xi-api-key': other.apiKey },
        payload: { leak_policy: 'notify' },
      });
      expect(res.statusCode).toBe(404);
    });

    it('answers 400 for a malformed key or source, in the error shape', async () => {
      const good = generateApiKey();
      const cases: object[] = [
        { key: badChecksum(good) },
        { key: good.slice(0, -1) },
        { key: `${good}A` },
        { key: good.replace('brz_', 'brx_') },
        { key: `${good.slice(0, 20)}-${good.slice(21)}` },
        { key: '' },
        { key: 42 },
        {},
        { key: good, source: 'not a url' },
        { key: good, source: 'javascript:alert(1)' },
        { key: good, source: 'file:///etc/passwd' },
        { key: good, source: `https://example.com/${'a'.repeat(2048)}` },
        { key: good, source: 'https://example.com/\u0000' },
      ];
      for (const payload of cases) {
        const res = await report(payload);
        expect(res.statusCode, JSON.stringify(payload)).toBe(400);
        const body = res.json();
        expect(body.error.code).toBe('VALIDATION_FAILED');
        expect(res.body).not.toContain(good.slice(12));
      }
    });

    it(`limits reports to ${LEAK_REPORTS_PER_IP.max} a minute per IP (429 with Retry-After)`, async () => {
      const ip = '10.77.0.1';
      for (let i = 0; i < LEAK_REPORTS_PER_IP.max; i++)
        expect((await report({ key: generateApiKey() }, ip)).statusCode).toBe(202);
      const limited = await report({ key: generateApiKey() }, ip);
      expect(limited.statusCode).toBe(429);
      expect(limited.json().error.code).toBe('RATE_LIMITED');
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      // malformed reports count too: the limit is per address, not per outcome
      expect((await report({ key: 'brz_x' }, ip)).statusCode).toBe(429);
      expect((await report({ key: generateApiKey() }, '10.77.0.2')).statusCode).toBe(202);
    });

    it('takes about as long for a live key as for an unknown one', async () => {
      const times = { live: [] as number[], unknown: [] as number[] };
      for (let i = 0; i < 8; i++) {
        const live = await s.seedKey({ email: `timing-${i}-${e.name}@example.com` });
        for (const [kind, key] of [
          ['live', live.apiKey],
          ['unknown', generateApiKey()],
        ] as const) {
          const t0 = performance.now();
          expect((await report({ key })).statusCode).toBe(202);
          times[kind].push(performance.now() - t0);
        }
      }
      // both wait for the same floor, which covers the extra work of a live key (an UPDATE)
      expect(median(times.live)).toBeGreaterThanOrEqual(LEAK_ANSWER_FLOOR_MS - 1);
      expect(median(times.unknown)).toBeGreaterThanOrEqual(LEAK_ANSWER_FLOOR_MS - 1);
      const diff = Math.abs(median(times.live) - median(times.unknown));
      expect(diff, JSON.stringify(times)).toBeLessThan(15);
    });
  });
}
