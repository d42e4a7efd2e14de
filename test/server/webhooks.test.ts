import { randomBytes } from 'node:crypto';
import type { JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { JwtService } from '../../src/server/jwt.js';
import { testEngines } from '../helpers/engines.js';
import type { TestServer } from '../helpers/server.js';
import { parseSignature, type Receiver, startReceiver, verifyWithJwks } from '../helpers/webhook-receiver.js';

/**
 * Issue 14, webhooks, black-box over HTTP on both engines: a receiver on loopback gets signed
 * deliveries that verify against the app's JWKS; failures are retried; the delivery log says what
 * happened; only owners and admins manage webhooks; events are validated.
 */

const eng = testEngines();
afterAll(() => eng.stop());

const uniq = () => randomBytes(4).toString('hex');
/** short timings: retries after 150 ms, then 300 ms ... */
const FAST = { pollMs: 50, retryBaseMs: 150, timeoutMs: 2000, expiryScanMs: 0 };

type Json = Record<string, unknown>;

async function call(s: TestServer, key: string, method: string, url: string, payload?: object) {
  const res = await s.app.inject({
    method: method as 'GET',
    url,
    headers: { 'xi-api-key': key },
    ...(payload ? { payload } : {}),
  });
  return { status: res.statusCode, body: (res.body ? res.json() : {}) as Json };
}

async function jwks(s: TestServer): Promise<{ keys: JWK[] }> {
  return (await s.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
}

async function deliveries(s: TestServer, key: string, hookId: string): Promise<Json[]> {
  const r = await call(s, key, 'GET', `/v1/webhooks/${hookId}/deliveries`);
  expect(r.status).toBe(200);
  return r.body.data as Json[];
}

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 8000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** An owner (personal organization) with an admin key, and its org id. */
async function owner(s: TestServer) {
  const seeded = await s.seedKey({ email: `owner-${uniq()}@example.com` });
  const me = await call(s, seeded.apiKey, 'GET', '/v1/me');
  return { ...seeded, orgId: (me.body.org as Json).id as string };
}

for (const e of eng.list) {
  describe.skipIf(e.skip)(`webhooks (${e.name})`, () => {
    let s: TestServer;
    let rx: Receiver;

    beforeAll(async () => {
      s = await e.startServer({ config: { allowPrivateWebhooks: true, webhooks: FAST, rateLimitPerKey: 0 } });
      rx = await startReceiver();
    });
    afterAll(async () => {
      await s?.close();
      await rx?.close();
    });

    test('create, list, delete: the API shapes, and webhook.created/deleted in the audit log without the URL path (a credential of Slack-like receivers)', async () => {
      const o = await owner(s);
      const created = await call(s, o.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
        url: `${rx.url}/services/T000/XOXB-SECRET-PATH`,
        events: ['key.created', 'key.rotated'],
      });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({
        url: `${rx.url}/services/T000/XOXB-SECRET-PATH`,
        events: ['key.created', 'key.rotated'],
      });
      expect(created.body.id).toMatch(/^whk_/);
      expect(Date.parse(created.body.created_at as string)).not.toBeNaN();

      const list = await call(s, o.apiKey, 'GET', `/v1/orgs/${o.orgId}/webhooks`);
      expect(list.status).toBe(200);
      expect((list.body.data as Json[]).map((h) => h.id)).toEqual([created.body.id]);

      const del = await call(s, o.apiKey, 'DELETE', `/v1/webhooks/${created.body.id}`);
      expect(del.status).toBe(204);
      expect((await call(s, o.apiKey, 'DELETE', `/v1/webhooks/${created.body.id}`)).status).toBe(404);
      expect((await call(s, o.apiKey, 'GET', `/v1/orgs/${o.orgId}/webhooks`)).body.data).toEqual([]);

      const audit = await call(s, o.apiKey, 'GET', `/v1/audit-events?org_id=${o.orgId}`);
      const actions = (audit.body.data as Json[]).map((ev) => [ev.action, (ev.target as Json).id]);
      expect(actions).toContainEqual(['webhook.created', created.body.id]);
      expect(actions).toContainEqual(['webhook.deleted', created.body.id]);
      // events are listed to the organization and sent to its other webhooks: the origin only
      expect(JSON.stringify(audit.body)).not.toContain('XOXB-SECRET-PATH');
      for (const ev of (audit.body.data as Json[]).filter((e) => String(e.action).startsWith('webhook.')))
        expect((ev.details as Json).url).toBe(`${new URL(rx.url).origin}/…`);
    });

    test('a ping reaches the receiver, signed with the key the JWKS publishes', async () => {
      const o = await owner(s);
      const hook = await call(s, o.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
        url: `${rx.url}/ping`,
        events: ['key.deleted'],
      });
      const before = rx.received.length;
      const t0 = Math.floor(Date.now() / 1000);
      const ping = await call(s, o.apiKey, 'POST', `/v1/webhooks/${hook.body.id}/test`);
      expect(ping.status).toBe(202);
      expect(ping.body).toMatchObject({ event: 'ping', status: 'pending', attempts: 0 });

      await rx.waitFor(before + 1);
      const got = rx.received[before]!;
      const body = JSON.parse(got.raw) as Json;
      expect(body).toMatchObject({ type: 'ping', data: { action: 'ping', org_id: o.orgId } });
      expect(body.id).toMatch(/^evt_/);
      expect(got.headers['content-type']).toBe('application/json');
      const sig = parseSignature(got.headers['breeze-signature']);
      expect(Number(sig.t)).toBeGreaterThanOrEqual(t0 - 1);
      expect(Number(sig.t)).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 1);
      expect(await verifyWithJwks(await jwks(s), got.headers['breeze-signature'], got.raw)).toBe(true);
      // a changed byte, or another time, does not verify
      expect(await verifyWithJwks(await jwks(s), got.headers['breeze-signature'], `${got.raw} `)).toBe(false);
      const otherT = `t=${Number(sig.t) + 1},kid=${sig.kid},sig=${sig.sig}`;
      expect(await verifyWithJwks(await jwks(s), otherT, got.raw)).toBe(false);

      const log = await until('the ping delivered', async () => {
        const d = await deliveries(s, o.apiKey, hook.body.id as string);
        return d[0]?.status === 'delivered' ? d : undefined;
      });
      expect(log[0]).toMatchObject({
        id: ping.body.id,
        event: 'ping',
        status: 'delivered',
        attempts: 1,
        last_status_code: 200,
        next_attempt_at: null,
      });
    });

    test('key.created reaches a subscribed receiver with the audit event, verified against the JWKS', async () => {
      const o = await owner(s);
      const hook = await call(s, o.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
        url: `${rx.url}/keys`,
        events: ['key.created'],
      });
      expect(hook.status).toBe(201);
      const before = rx.received.length;
      const key = await call(s, o.apiKey, 'POST', '/v1/api-keys', { name: 'ci', scopes: ['read'] });
      expect(key.status).toBe(201);
      const got = await until('the key.created delivery', async () =>
        rx.received.slice(before).find((r) => r.raw.includes(key.body.key_id as string)),
      );
      const body = JSON.parse(got!.raw) as Json;
      expect(body).toMatchObject({
        type: 'key.created',
        data: { action: 'key.created', org_id: o.orgId, target: { id: key.body.key_id } },
      });
      expect(body.id).toMatch(/^evt_/);
      expect(typeof body.created_at).toBe('string');
      expect(await verifyWithJwks(await jwks(s), got!.headers['breeze-signature'], got!.raw)).toBe(true);
      // the delivery never carries the plaintext key
      expect(got!.raw).not.toContain(key.body.api_key as string);
    });

    test('an event goes only to webhooks subscribed to it, in its own organization; "*" gets everything', async () => {
      const a = await owner(s);
      const b = await owner(s);
      const rxA = await startReceiver();
      const rxAll = await startReceiver();
      const rxB = await startReceiver();
      try {
        await call(s, a.apiKey, 'POST', `/v1/orgs/${a.orgId}/webhooks`, {
          url: rxA.url,
          events: ['webhook.deleted'],
        });
        await call(s, a.apiKey, 'POST', `/v1/orgs/${a.orgId}/webhooks`, { url: rxAll.url, events: ['*'] });
        await call(s, b.apiKey, 'POST', `/v1/orgs/${b.orgId}/webhooks`, { url: rxB.url, events: ['*'] });
        // a webhook.created in org A: "*" of A gets it, the webhook.deleted subscriber and org B do not
        const third = await call(s, a.apiKey, 'POST', `/v1/orgs/${a.orgId}/webhooks`, {
          url: `${rx.url}/third`,
          events: ['member.joined'],
        });
        const got = await until('the "*" webhook to get the third webhook.created', async () =>
          rxAll.received.find((r) => r.raw.includes(third.body.id as string)),
        );
        expect((JSON.parse(got.raw) as Json).type).toBe('webhook.created');
        await new Promise((r) => setTimeout(r, 300));
        expect(rxA.received).toHaveLength(0);
        expect(rxB.received.filter((r) => r.raw.includes(third.body.id as string))).toHaveLength(0);
      } finally {
        await rxA.close();
        await rxAll.close();
        await rxB.close();
      }
    });

    test('a receiver that fails twice gets the third attempt; the log shows every attempt', async () => {
      const o = await owner(s);
      const flaky = await startReceiver();
      try {
        flaky.answers.push(500, 503);
        const hook = await call(s, o.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
          url: `${flaky.url}/flaky`,
          events: ['key.deleted'],
        });
        const ping = await call(s, o.apiKey, 'POST', `/v1/webhooks/${hook.body.id}/test`);
        const got = await flaky.waitFor(3);
        // the same event each time (receivers drop duplicates by `id`), signed afresh
        const ids = got.map((r) => (JSON.parse(r.raw) as Json).id);
        expect(new Set(ids).size).toBe(1);
        for (const r of got)
          expect(await verifyWithJwks(await jwks(s), r.headers['breeze-signature'], r.raw)).toBe(true);
        // backoff: the second wait is longer than the first
        const gap1 = got[1]!.at - got[0]!.at;
        const gap2 = got[2]!.at - got[1]!.at;
        expect(gap1).toBeGreaterThanOrEqual(FAST.retryBaseMs - 20);
        expect(gap2).toBeGreaterThanOrEqual(2 * FAST.retryBaseMs - 20);
        const d = await until('the delivery marked delivered', async () => {
          const rows = await deliveries(s, o.apiKey, hook.body.id as string);
          const row = rows.find((x) => x.id === ping.body.id);
          return row?.status === 'delivered' ? row : undefined;
        });
        expect(d).toMatchObject({ attempts: 3, last_status_code: 200 });
      } finally {
        await flaky.close();
      }
    });

    test('a redirect is a failure (not followed), with its status code in the log', async () => {
      const o = await owner(s);
      const redirecting = await startReceiver();
      try {
        redirecting.answers.push(302);
        const hook = await call(s, o.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
          url: redirecting.url,
          events: ['key.deleted'],
        });
        await call(s, o.apiKey, 'POST', `/v1/webhooks/${hook.body.id}/test`);
        const row = await until('a failed attempt', async () => {
          const rows = await deliveries(s, o.apiKey, hook.body.id as string);
          return rows[0] && (rows[0].attempts as number) >= 1 ? rows[0] : undefined;
        });
        expect(row.last_status_code).toBe(302);
        expect(row.last_error).toMatch(/redirect/);
        // the location was not visited
        await redirecting.waitFor(2);
        expect(redirecting.received.every((r) => !r.raw.includes('elsewhere'))).toBe(true);
      } finally {
        await redirecting.close();
      }
    });

    test('only owners and admins manage webhooks; other organizations see 404', async () => {
      const o = await owner(s);
      const hook = await call(s, o.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
        url: `${rx.url}/roles`,
        events: ['key.created'],
      });
      for (const role of ['admin', 'member', 'viewer'] as const) {
        const m = await s.seedKey({ email: `${role}-${uniq()}@example.com` });
        await s.store.orgs.addMember(o.orgId, m.userId, role);
        const create = await call(s, m.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
          url: `${rx.url}/${role}`,
          events: ['key.created'],
        });
        const list = await call(s, m.apiKey, 'GET', `/v1/orgs/${o.orgId}/webhooks`);
        const log = await call(s, m.apiKey, 'GET', `/v1/webhooks/${hook.body.id}/deliveries`);
        const ping = await call(s, m.apiKey, 'POST', `/v1/webhooks/${hook.body.id}/test`);
        if (role === 'admin') {
          expect([create.status, list.status, log.status, ping.status]).toEqual([201, 200, 200, 202]);
        } else {
          expect([create.status, list.status, log.status, ping.status]).toEqual([403, 403, 403, 403]);
          expect((create.body.error as Json).code).toBe('FORBIDDEN');
        }
      }
      // an owner's key without "admin": may read, not manage
      const ro = await owner(s);
      const roKey = await call(s, ro.apiKey, 'POST', '/v1/api-keys', { name: 'ro', scopes: ['read'] });
      const roHeader = roKey.body.api_key as string;
      expect((await call(s, roHeader, 'GET', `/v1/orgs/${ro.orgId}/webhooks`)).status).toBe(200);
      expect(
        (
          await call(s, roHeader, 'POST', `/v1/orgs/${ro.orgId}/webhooks`, {
            url: `${rx.url}/ro`,
            events: ['*'],
          })
        ).status,
      ).toBe(403);

      const outsider = await owner(s);
      expect(
        (
          await call(s, outsider.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
            url: rx.url,
            events: ['*'],
          })
        ).status,
      ).toBe(404);
      expect((await call(s, outsider.apiKey, 'GET', `/v1/orgs/${o.orgId}/webhooks`)).status).toBe(404);
      for (const [method, path] of [
        ['DELETE', `/v1/webhooks/${hook.body.id}`],
        ['GET', `/v1/webhooks/${hook.body.id}/deliveries`],
        ['POST', `/v1/webhooks/${hook.body.id}/test`],
      ] as const) {
        const r = await call(s, outsider.apiKey, method, path);
        expect(r.status).toBe(404);
        expect((r.body.error as Json).code).toBe('NOT_FOUND');
      }
      // no credential
      const anon = await s.app.inject({ method: 'GET', url: `/v1/orgs/${o.orgId}/webhooks` });
      expect(anon.statusCode).toBe(401);
    });

    test('bad input is a clear 400, never a 5xx', async () => {
      const o = await owner(s);
      const post = (payload: object) => call(s, o.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, payload);
      const cases: [object, RegExp | null][] = [
        [{ url: rx.url, events: ['key.nonsense'] }, /Unknown event: "key.nonsense"/],
        // next to "*" too: a misspelt name is not silently dropped
        [{ url: rx.url, events: ['*', 'key.craeted'] }, /Unknown event: "key.craeted"/],
        [{ url: rx.url, events: [] }, null],
        [{ url: rx.url }, null],
        [{ events: ['*'] }, null],
        [{ url: 'not a url', events: ['*'] }, /not a valid absolute URL/],
        [{ url: 'ftp://example.com/x', events: ['*'] }, /https/],
        [{ url: `${rx.url}/\u0000`, events: ['*'] }, null],
        [{ url: `${rx.url}/x`, events: ['key.created\n'] }, null],
        [{ url: `http://user:pw@127.0.0.1:${rx.port}/`, events: ['*'] }, /user name or password/],
        [{ url: 'x'.repeat(3000), events: ['*'] }, null],
        [{ url: 42, events: ['*'] }, null],
      ];
      for (const [payload, message] of cases) {
        const r = await post(payload);
        expect(r.status, JSON.stringify(payload)).toBe(400);
        expect((r.body.error as Json).code).toBe('VALIDATION_FAILED');
        if (message) expect((r.body.error as Json).message).toMatch(message);
      }
      const bad = await call(s, o.apiKey, 'GET', `/v1/webhooks/whk_nope/deliveries?limit=0`);
      expect(bad.status).toBe(400);
      expect((await call(s, o.apiKey, 'GET', '/v1/webhooks/whk_nope/deliveries')).status).toBe(404);
    });

    test('finished deliveries older than the retention (30 days) leave the log; pending ones stay', async () => {
      const o = await owner(s);
      const hook = await call(s, o.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
        url: `${rx.url}/prune`,
        events: ['key.deleted'],
      });
      const done = await call(s, o.apiKey, 'POST', `/v1/webhooks/${hook.body.id}/test`);
      await until('delivered', async () => {
        const d = await deliveries(s, o.apiKey, hook.body.id as string);
        return d.find((x) => x.id === done.body.id)?.status === 'delivered';
      });
      const old = new Date(Date.now() - 31 * 86400_000).toISOString();
      await s.store.db
        .updateTable('webhook_deliveries')
        .set({ created_at: old })
        .where('id', '=', done.body.id as string)
        .execute();
      // an old one still retrying (as if after a long outage) is not pruned
      const stuck = { body: { id: `dlv_stuck${uniq()}` } };
      await s.store.db
        .insertInto('webhook_deliveries')
        .values({
          id: stuck.body.id,
          webhook_id: hook.body.id as string,
          event_id: `evt_stuck${uniq()}`,
          event_type: 'ping',
          body: '{}',
          status: 'pending',
          attempts: 12,
          last_status_code: 503,
          last_error: 'answered 503',
          created_at: old,
          next_attempt_at: new Date(Date.now() + 3600_000).toISOString(),
          lease_until: null,
          delivered_at: null,
        })
        .execute();
      expect(await s.app.breezeWebhooks.worker.pruneDeliveries()).toBeGreaterThanOrEqual(1);
      const left = (await deliveries(s, o.apiKey, hook.body.id as string)).map((d) => d.id);
      expect(left).not.toContain(done.body.id);
      expect(left).toContain(stuck.body.id);
    });

    test('key.expiring: once 7 days ahead and once 1 day ahead, never twice', async () => {
      const o = await owner(s);
      const rxExp = await startReceiver();
      try {
        await call(s, o.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
          url: rxExp.url,
          events: ['key.expiring'],
        });
        const in3d = new Date(Date.now() + 3 * 86400_000).toISOString();
        const in5h = new Date(Date.now() + 5 * 3600_000).toISOString();
        const in30d = new Date(Date.now() + 30 * 86400_000).toISOString();
        const k3d = await call(s, o.apiKey, 'POST', '/v1/api-keys', { name: 'three days', expires_at: in3d });
        const k5h = await call(s, o.apiKey, 'POST', '/v1/api-keys', { name: 'five hours', expires_at: in5h });
        const k30 = await call(s, o.apiKey, 'POST', '/v1/api-keys', {
          name: 'thirty days',
          expires_at: in30d,
        });
        expect([k3d.status, k5h.status, k30.status]).toEqual([201, 201, 201]);

        const worker = s.app.breezeWebhooks.worker;
        const sent = await worker.scanExpiring();
        expect(sent).toBeGreaterThanOrEqual(2);
        const got = await rxExp.waitFor(2);
        const byKey = new Map(
          got.map((r) => {
            const b = JSON.parse(r.raw) as { type: string; data: { target: { id: string }; details: Json } };
            expect(b.type).toBe('key.expiring');
            return [b.data.target.id, b.data.details.within];
          }),
        );
        expect(byKey.get(k3d.body.key_id as string)).toBe('7d');
        expect(byKey.get(k5h.body.key_id as string)).toBe('1d');
        expect(byKey.has(k30.body.key_id as string)).toBe(false);
        for (const r of got)
          expect(await verifyWithJwks(await jwks(s), r.headers['breeze-signature'], r.raw)).toBe(true);
        // the scheduler runs again (this instance or another): nothing new for these keys
        await worker.scanExpiring();
        await new Promise((r) => setTimeout(r, 300));
        const mine = rxExp.received.filter((r) =>
          [k3d, k5h, k30].some((k) => r.raw.includes(k.body.key_id as string)),
        );
        expect(mine).toHaveLength(2);
      } finally {
        await rxExp.close();
      }
    });

    test('key.expiring for a key made inside the window goes out within seconds, not at the next periodic scan', async () => {
      // the default 10-minute scan (its first run comes 5 s after the start)
      const started = Date.now();
      const s2 = await e.startServer({
        config: {
          allowPrivateWebhooks: true,
          webhooks: { ...FAST, expiryScanMs: 600_000 },
          rateLimitPerKey: 0,
        },
      });
      const rxExp = await startReceiver();
      try {
        const o = await owner(s2);
        await call(s2, o.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, { url: rxExp.url, events: ['*'] });
        const in5h = new Date(Date.now() + 5 * 3600_000).toISOString();
        const k = await call(s2, o.apiKey, 'POST', '/v1/api-keys', { name: 'five hours', expires_at: in5h });
        expect(k.status).toBe(201);
        const notice = await until(
          'key.expiring',
          async () =>
            rxExp.received.find(
              (r) => r.raw.includes('"key.expiring"') && r.raw.includes(k.body.key_id as string),
            ),
          3000,
        );
        // before the first periodic scan could have run: the key's creation asked for it
        expect(notice.at - started).toBeLessThan(5000);
        // shaped like the audit events: a key target, the system actor
        expect(JSON.parse(notice.raw)).toMatchObject({
          type: 'key.expiring',
          data: {
            action: 'key.expiring',
            org_id: o.orgId,
            actor: { type: 'system', id: 'system' },
            target: { type: 'key', id: k.body.key_id },
            details: { within: '1d' },
          },
        });
      } finally {
        await rxExp.close();
        await s2.close();
      }
    });
  });
}

describe('JWT service signing is the JWKS key', () => {
  test('signDetached uses the current kid', async () => {
    const e = eng.list[0]!;
    const s = await e.startServer();
    try {
      const jwt = (s.app as unknown as { jwtService: JwtService }).jwtService;
      const { kid } = await jwt.signDetached(Buffer.from('x'));
      expect((await jwks(s)).keys.map((k) => k.kid)).toContain(kid);
    } finally {
      await s.close();
    }
  });
});

describe('delivery log retention follows the audit retention', () => {
  test('with events kept 7 days, a finished delivery (a copy of its event) is pruned after 7 days, not 30', async () => {
    const s = await eng.list[0]!.startServer({
      config: { allowPrivateWebhooks: true, auditRetentionDays: 7, webhooks: { expiryScanMs: 0 } },
    });
    try {
      expect(s.app.breezeWebhooks.worker.tuning.deliveryRetentionMs).toBe(7 * 86_400_000);
      const o = await owner(s);
      const hook = await call(s, o.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
        url: 'http://127.0.0.1:9/retention',
        events: ['key.deleted'],
      });
      const at = (days: number) => new Date(Date.now() - days * 86400_000).toISOString();
      const row = (id: string, days: number) => ({
        id,
        webhook_id: hook.body.id as string,
        event_id: `evt_${id}`,
        event_type: 'key.deleted',
        body: '{"data":{"ip":"198.51.100.7"}}',
        status: 'delivered',
        attempts: 1,
        last_status_code: 204,
        last_error: null,
        created_at: at(days),
        next_attempt_at: null,
        lease_until: null,
        delivered_at: at(days),
      });
      await s.store.db
        .insertInto('webhook_deliveries')
        .values([row(`dlv_old${uniq()}`, 8), row(`dlv_new${uniq()}`, 6)])
        .execute();
      expect(await s.app.breezeWebhooks.worker.pruneDeliveries()).toBe(1);
      const left = (await deliveries(s, o.apiKey, hook.body.id as string)).map((d) => d.id as string);
      expect(left).toHaveLength(1);
      expect(left[0]).toMatch(/^dlv_new/);
    } finally {
      await s.close();
    }
  });
});
