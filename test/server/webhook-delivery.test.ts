import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isPublicAddress, type Resolver } from '../../src/server/services/webhook-target.js';
import { DEFAULT_TUNING, retryDelayMs } from '../../src/server/services/webhook-worker.js';
import { openStore, type Store } from '../../src/server/store/index.js';
import { postgresAvailability, startPostgres, type TestPostgres, uniqueDbName } from '../helpers/postgres.js';
import { requirePart } from '../helpers/require.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { type Receiver, startReceiver, verifyWithJwks } from '../helpers/webhook-receiver.js';

/**
 * Issue 14, webhooks: the SSRF guard (creation and delivery, DNS rebinding included), and delivery
 * across a restart on the same SQLite file.
 */

type Json = Record<string, unknown>;
const uniq = () => randomBytes(4).toString('hex');
const FAST = { pollMs: 50, retryBaseMs: 150, timeoutMs: 5000, expiryScanMs: 0 };

async function call(s: TestServer, key: string, method: string, url: string, payload?: object) {
  const res = await s.app.inject({
    method: method as 'GET',
    url,
    headers: { 'xi-api-key': key },
    ...(payload ? { payload } : {}),
  });
  return { status: res.statusCode, body: (res.body ? res.json() : {}) as Json };
}

async function owner(s: TestServer) {
  const seeded = await s.seedKey({ email: `owner-${uniq()}@example.com` });
  const me = await call(s, seeded.apiKey, 'GET', '/v1/me');
  return { ...seeded, orgId: (me.body.org as Json).id as string };
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

describe('which addresses are public', () => {
  const refused = [
    '127.0.0.1',
    '127.255.0.9',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '100.127.255.254',
    '0.0.0.0',
    '224.0.0.251',
    '239.255.255.250',
    '255.255.255.255',
    '240.0.0.1',
    '192.0.2.1',
    '198.18.0.1',
    '::',
    '::1',
    'fe80::1',
    'fe80::1%eth0',
    'fd00::1',
    'fc12:3456::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:10.0.0.1',
    '::ffff:169.254.169.254',
    '::127.0.0.1',
    '64:ff9b::7f00:1',
    '64:ff9b::a9fe:a9fe',
    '2002:7f00:1::1',
    '2002:c0a8:101::1',
    '2001:db8::1',
    'not an address',
  ];
  const allowed = [
    '93.184.216.34',
    '8.8.8.8',
    '1.1.1.1',
    '172.32.0.1',
    '100.128.0.1',
    '2606:4700:4700::1111',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    '2002:808:808::1',
  ];
  test.each(refused)('%s is refused', (a) => expect(isPublicAddress(a)).toBe(false));
  test.each(allowed)('%s is allowed', (a) => expect(isPublicAddress(a)).toBe(true));
});

test('retries: the first within 30 s, then doubling, capped', () => {
  const t = { retryBaseMs: 10_000, maxRetryDelayMs: 3 * 3600_000 };
  expect(retryDelayMs(1, t)).toBe(10_000);
  expect(retryDelayMs(2, t)).toBe(20_000);
  expect(retryDelayMs(3, t)).toBe(40_000);
  expect(retryDelayMs(30, t)).toBe(3 * 3600_000);
  // the schedule spans about 24 h: count the attempts that fit
  let at = 0;
  let n = 1;
  while (at + retryDelayMs(n, t) <= 24 * 3600_000) at += retryDelayMs(n++, t);
  expect(n).toBeGreaterThan(10);
  expect(n).toBeLessThan(25);
});

test('the served defaults: no answer within 10 s fails an attempt, the first retry comes after 10 s, retries stop after 24 h', () => {
  expect(DEFAULT_TUNING.timeoutMs).toBe(10_000);
  expect(retryDelayMs(1, DEFAULT_TUNING)).toBe(10_000);
  expect(retryDelayMs(2, DEFAULT_TUNING)).toBe(20_000);
  expect(DEFAULT_TUNING.maxAgeMs).toBe(24 * 3600_000);
});

describe('a receiver that does not answer in time', () => {
  let s: TestServer;
  let rx: Receiver;
  beforeAll(async () => {
    s = await startTestServer({
      // an attempt's limit long enough that a loaded machine's answer still makes it, short
      // enough that the hang is cut off quickly; the retry window leaves room for a slow second try
      config: { allowPrivateWebhooks: true, webhooks: { ...FAST, timeoutMs: 1000, maxAgeMs: 4000 } },
    });
    rx = await startReceiver();
  });
  afterAll(async () => {
    await s?.close();
    await rx?.close();
  });

  test('no answer within the attempt limit is a failure, and the delivery is retried', async () => {
    const o = await owner(s);
    const hook = await call(s, o.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
      url: `${rx.url}/slow`,
      events: ['key.deleted'],
    });
    rx.answers.push('hang');
    const ping = await call(s, o.apiKey, 'POST', `/v1/webhooks/${hook.body.id}/test`);
    const row = await until('delivered on the second attempt', async () => {
      const r = await call(s, o.apiKey, 'GET', `/v1/webhooks/${hook.body.id}/deliveries`);
      const d = (r.body.data as Json[]).find((x) => x.id === ping.body.id);
      return d?.status === 'delivered' ? d : undefined;
    });
    expect(row).toMatchObject({ attempts: 2, last_status_code: 200 });
  });

  test('once the retry window has passed, a failing delivery is marked failed and no longer tried', async () => {
    const o = await owner(s);
    const down = await startReceiver();
    try {
      down.answers.push(...Array<number>(50).fill(500));
      const hook = await call(s, o.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
        url: `${down.url}/down`,
        events: ['key.deleted'],
      });
      const ping = await call(s, o.apiKey, 'POST', `/v1/webhooks/${hook.body.id}/test`);
      const row = await until(
        'the delivery given up',
        async () => {
          const r = await call(s, o.apiKey, 'GET', `/v1/webhooks/${hook.body.id}/deliveries`);
          const d = (r.body.data as Json[]).find((x) => x.id === ping.body.id);
          return d?.status === 'failed' ? d : undefined;
        },
        15_000,
      );
      expect(row.attempts as number).toBeGreaterThan(1);
      expect(row.next_attempt_at ?? null).toBeNull();
      const tried = down.received.length;
      expect(tried).toBe(row.attempts);
      await new Promise((r) => setTimeout(r, 800));
      expect(down.received.length).toBe(tried);
    } finally {
      await down.close();
    }
  });
});

describe('fairness between organizations', () => {
  let s: TestServer;
  let hung: Receiver;
  let quick: Receiver;
  beforeAll(async () => {
    s = await startTestServer({
      // 4 slots; an attempt that gets no answer holds its slot 3 s
      config: { allowPrivateWebhooks: true, webhooks: { ...FAST, timeoutMs: 3000, concurrency: 4 } },
    });
    hung = await startReceiver();
    hung.answers.push(...Array<'hang'>(100).fill('hang'));
    quick = await startReceiver();
  });
  afterAll(async () => {
    await s?.close();
    await hung?.close();
    await quick?.close();
  });

  test("receivers that never answer hold up their own organization's deliveries, not another's", async () => {
    const a = await owner(s);
    const b = await owner(s);
    // organization A: 6 webhooks whose receiver never answers, 3 deliveries each
    for (let i = 0; i < 6; i++) {
      const hook = await call(s, a.apiKey, 'POST', `/v1/orgs/${a.orgId}/webhooks`, {
        url: `${hung.url}/a${i}`,
        events: ['key.deleted'],
      });
      for (let n = 0; n < 3; n++)
        expect((await call(s, a.apiKey, 'POST', `/v1/webhooks/${hook.body.id}/test`)).status).toBe(202);
    }
    await until('A holding the slots', async () => hung.received.length >= 3);
    // organization B's delivery, behind 18 of A's: out at once, not after A's batches time out
    const hook = await call(s, b.apiKey, 'POST', `/v1/orgs/${b.orgId}/webhooks`, {
      url: `${quick.url}/b`,
      events: ['key.deleted'],
    });
    const sent = Date.now();
    expect((await call(s, b.apiKey, 'POST', `/v1/webhooks/${hook.body.id}/test`)).status).toBe(202);
    await quick.waitFor(1, 10_000);
    expect((quick.received[0]?.at ?? Number.POSITIVE_INFINITY) - sent).toBeLessThan(1500);
    // A, alone with deliveries due, had every slot but one (none of its attempts has ended yet)
    expect(hung.received.length).toBe(3);
  });
});

describe('without --allow-private-webhooks', () => {
  let s: TestServer;
  let rx: Receiver;
  /** `rebind.test` answers a public address once, then loopback (a DNS rebinding attack) */
  let rebindCalls = 0;
  const resolve: Resolver = async (host) => {
    if (host === 'internal.test') return [{ address: '127.0.0.1', family: 4 }];
    if (host === 'mixed.test')
      return [
        { address: '93.184.216.34', family: 4 },
        { address: '10.0.0.7', family: 4 },
      ];
    if (host === 'rebind.test') {
      rebindCalls++;
      return [{ address: rebindCalls === 1 ? '93.184.216.34' : '127.0.0.1', family: 4 }];
    }
    if (host === 'localhost') return [{ address: '127.0.0.1', family: 4 }];
    throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
  };

  beforeAll(async () => {
    s = await startTestServer({ config: { webhooks: { ...FAST, resolve } } });
    rx = await startReceiver();
  });
  afterAll(async () => {
    await s?.close();
    await rx?.close();
  });

  test('creating a webhook for a private, loopback or link-local target is 400 with the reason', async () => {
    const o = await owner(s);
    const refused: [string, RegExp][] = [
      [`http://127.0.0.1:${rx.port}/`, /must use https/],
      [`http://93.184.216.34/`, /must use https/],
      [`https://127.0.0.1:${rx.port}/`, /127\.0\.0\.1 is a private, loopback/],
      ['https://localhost/', /localhost \(127\.0\.0\.1\)/],
      ['https://[::1]/', /non-public/],
      ['https://[::ffff:127.0.0.1]/', /non-public/],
      ['https://169.254.169.254/latest/meta-data', /non-public/],
      ['https://10.0.0.1/', /non-public/],
      ['https://100.64.0.1/', /non-public/],
      ['https://[fd00::1]/', /non-public/],
      ['https://[fe80::1]/', /non-public/],
      ['https://0.0.0.0/', /non-public/],
      ['https://2130706433/', /non-public/], // 127.0.0.1 as one number
      ['https://0x7f.1/', /non-public/],
      ['https://internal.test/hook', /internal\.test \(127\.0\.0\.1\)/],
      ['https://mixed.test/hook', /mixed\.test \(10\.0\.0\.7\)/],
    ];
    for (const [url, message] of refused) {
      const r = await call(s, o.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, { url, events: ['*'] });
      expect(r.status, url).toBe(400);
      expect((r.body.error as Json).code).toBe('VALIDATION_FAILED');
      expect((r.body.error as Json).message, url).toMatch(message);
    }
    expect((await call(s, o.apiKey, 'GET', `/v1/orgs/${o.orgId}/webhooks`)).body.data).toEqual([]);
    const ok = await call(s, o.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
      url: 'https://93.184.216.34/hook',
      events: ['oidc.exchanged'],
    });
    expect(ok.status).toBe(201);
  });

  test('a name that resolves to nothing yet is accepted; each delivery resolves it again and the log says why it failed', async () => {
    const o = await owner(s);
    const hook = await call(s, o.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
      url: 'https://no-such-host.test/hook',
      events: ['key.deleted'],
    });
    expect(hook.status, JSON.stringify(hook.body)).toBe(201);
    const ping = await call(s, o.apiKey, 'POST', `/v1/webhooks/${hook.body.id}/test`);
    expect(ping.status).toBe(202);
    const row = await until('the first attempt logged', async () => {
      const r = await call(s, o.apiKey, 'GET', `/v1/webhooks/${hook.body.id}/deliveries`);
      const d = (r.body.data as Json[]).find((x) => x.id === ping.body.id);
      return d && (d.attempts as number) >= 1 ? d : undefined;
    });
    expect(row.status).not.toBe('delivered');
    expect(String(row.last_error)).toMatch(/could not be resolved/);
  });

  test('a name that resolves to loopback at delivery (DNS rebinding) reaches nothing', async () => {
    const o = await owner(s);
    const hook = await call(s, o.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
      url: `https://rebind.test:${rx.port}/hook`,
      events: ['key.deleted'],
    });
    expect(hook.status).toBe(201);
    const before = rx.connections;
    await call(s, o.apiKey, 'POST', `/v1/webhooks/${hook.body.id}/test`);
    const row = await until('a failed attempt', async () => {
      const r = await call(s, o.apiKey, 'GET', `/v1/webhooks/${hook.body.id}/deliveries`);
      const d = (r.body.data as Json[])[0];
      return d && (d.attempts as number) >= 1 ? d : undefined;
    });
    expect(row).toMatchObject({ status: 'pending', last_status_code: null });
    expect(row.last_error).toMatch(/rebind\.test \(127\.0\.0\.1\).*non-public/);
    expect(rebindCalls).toBeGreaterThanOrEqual(2);
    expect(rx.connections).toBe(before);
  });

  test('a stored private target (made under the flag) is refused at delivery once the flag is off', async () => {
    const o = await owner(s);
    const id = `whk_${uniq()}`;
    await s.store.db
      .insertInto('webhooks')
      .values({
        id,
        org_id: o.orgId,
        url: `http://127.0.0.1:${rx.port}/`,
        events: '*',
        created_by: o.userId,
        created_at: new Date().toISOString(),
      })
      .execute();
    const before = rx.connections;
    expect((await call(s, o.apiKey, 'POST', `/v1/webhooks/${id}/test`)).status).toBe(202);
    const row = await until('a failed attempt', async () => {
      const r = await call(s, o.apiKey, 'GET', `/v1/webhooks/${id}/deliveries`);
      const d = (r.body.data as Json[])[0];
      return d && (d.attempts as number) >= 1 ? d : undefined;
    });
    expect(row.last_error).toMatch(/https/);
    expect(rx.connections).toBe(before);
  });
});

describe('restarts', () => {
  let dataDir: string;
  let rx: Receiver;
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'breeze-webhooks-'));
    rx = await startReceiver();
  });
  afterAll(async () => {
    await rx?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A server over the SQLite file in `dataDir`, as `breeze serve --data-dir` would open it. */
  async function open(retryBaseMs = FAST.retryBaseMs) {
    const store = await openStore({ dataDir });
    const s = await startTestServer({
      store,
      config: { allowPrivateWebhooks: true, webhooks: { ...FAST, retryBaseMs } },
    });
    return {
      s,
      async close() {
        await s.close();
        await store.close();
      },
    };
  }

  test('a restart between attempts loses no delivery', async () => {
    // a long backoff: the retry is due only after the restart
    const first = await open(1500);
    const o = await owner(first.s);
    const hook = await call(first.s, o.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
      url: `${rx.url}/restart`,
      events: ['key.deleted'],
    });
    rx.answers.push(503);
    const before = rx.received.length;
    const ping = await call(first.s, o.apiKey, 'POST', `/v1/webhooks/${hook.body.id}/test`);
    await rx.waitFor(before + 1);
    await until('the failed attempt recorded', async () => {
      const r = await call(first.s, o.apiKey, 'GET', `/v1/webhooks/${hook.body.id}/deliveries`);
      return ((r.body.data as Json[])[0]?.attempts as number) === 1;
    });
    await first.close();

    const second = await open();
    try {
      const got = await rx.waitFor(before + 2);
      const last = got[before + 1]!;
      expect(JSON.parse(last.raw)).toMatchObject({ type: 'ping' });
      const jwks = (await second.s.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
      expect(await verifyWithJwks(jwks, last.headers['breeze-signature'], last.raw)).toBe(true);
      const row = await until('delivered after the restart', async () => {
        const r = await call(second.s, o.apiKey, 'GET', `/v1/webhooks/${hook.body.id}/deliveries`);
        const d = (r.body.data as Json[]).find((x) => x.id === ping.body.id);
        return d?.status === 'delivered' ? d : undefined;
      });
      expect(row).toMatchObject({ attempts: 2, last_status_code: 200 });
    } finally {
      await second.close();
    }
  });

  test('closing the server mid-attempt gives the delivery back; the next start delivers it', async () => {
    const first = await open();
    const o = await owner(first.s);
    const hook = await call(first.s, o.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
      url: `${rx.url}/hang`,
      events: ['key.deleted'],
    });
    rx.answers.push('hang');
    const before = rx.received.length;
    const ping = await call(first.s, o.apiKey, 'POST', `/v1/webhooks/${hook.body.id}/test`);
    await rx.waitFor(before + 1);
    const t0 = Date.now();
    await first.close();
    // no waiting for the 5 s attempt limit
    expect(Date.now() - t0).toBeLessThan(3000);

    const second = await open();
    try {
      await rx.waitFor(before + 2);
      const row = await until('delivered after the restart', async () => {
        const r = await call(second.s, o.apiKey, 'GET', `/v1/webhooks/${hook.body.id}/deliveries`);
        const d = (r.body.data as Json[]).find((x) => x.id === ping.body.id);
        return d?.status === 'delivered' ? d : undefined;
      });
      // the aborted attempt is not counted
      expect(row).toMatchObject({ attempts: 1, last_status_code: 200 });
    } finally {
      await second.close();
    }
  });
});

const pgAvail = postgresAvailability();

describe.skipIf(requirePart('PostgreSQL', pgAvail.available, pgAvail.why))(
  'two instances on one PostgreSQL database',
  () => {
    let pg: TestPostgres;
    const stores: Store[] = [];
    const servers: TestServer[] = [];
    let rx: Receiver;

    beforeAll(async () => {
      pg = await startPostgres();
      const url = await pg.createDatabase(uniqueDbName('webhooks'));
      rx = await startReceiver();
      for (let i = 0; i < 2; i++) {
        // each instance its own pool, as two `breeze serve --database-url` processes have
        const store = await openStore({ databaseUrl: url });
        stores.push(store);
        servers.push(
          await startTestServer({
            store,
            config: { allowPrivateWebhooks: true, webhooks: { ...FAST, pollMs: 20, concurrency: 4 } },
          }),
        );
      }
    });
    afterAll(async () => {
      for (const s of servers) await s.close();
      for (const st of stores) await st.close();
      await rx?.close();
      await pg?.stop();
    });

    test('every delivery is sent once, though both workers claim from the same table', async () => {
      const [a, b] = servers as [TestServer, TestServer];
      const o = await owner(a);
      const hook = await call(a, o.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
        url: `${rx.url}/shared`,
        events: ['key.deleted'],
      });
      const sent: string[] = [];
      // pings enqueued through both instances, at once
      await Promise.all(
        Array.from({ length: 30 }, async (_, i) => {
          const r = await call(i % 2 ? a : b, o.apiKey, 'POST', `/v1/webhooks/${hook.body.id}/test`);
          expect(r.status).toBe(202);
          sent.push(r.body.id as string);
        }),
      );
      await rx.waitFor(30, 20_000);
      await new Promise((r) => setTimeout(r, 300));
      const ids = rx.received.map((r) => r.headers['breeze-delivery'] as string);
      expect(ids.sort()).toEqual([...sent].sort());
      const log = await call(b, o.apiKey, 'GET', `/v1/webhooks/${hook.body.id}/deliveries?limit=50`);
      expect((log.body.data as Json[]).every((d) => d.status === 'delivered' && d.attempts === 1)).toBe(true);
    });

    test("a webhook created on one instance gets the other's very next event, enqueued with it", async () => {
      const [a, b] = servers as [TestServer, TestServer];
      const o = await owner(a);
      const deliveriesOf = (webhookId: string) =>
        (stores[0] as Store).db
          .selectFrom('webhook_deliveries')
          .select(['event_id', 'event_type'])
          .where('webhook_id', '=', webhookId)
          .execute();
      const eventOf = async (keyId: string) =>
        (
          await (stores[1] as Store).db
            .selectFrom('audit_events')
            .select('id')
            .where('target_id', '=', keyId)
            .where('action', '=', 'key.created')
            .executeTakeFirstOrThrow()
        ).id;
      // b records events of the organization while it has no webhook (whatever b might remember of that)
      for (let i = 0; i < 3; i++) {
        expect((await call(b, o.apiKey, 'POST', '/v1/api-keys', { name: `before ${i}` })).status).toBe(201);
      }
      const hook = await call(a, o.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
        url: `${rx.url}/cross-instance`,
        events: ['key.created'],
      });
      expect(hook.status).toBe(201);
      // at once, no waiting: the delivery is in the database when b's answer arrives
      const created = await call(b, o.apiKey, 'POST', '/v1/api-keys', { name: 'after' });
      expect(created.status).toBe(201);
      expect(await deliveriesOf(hook.body.id as string)).toEqual([
        { event_id: await eventOf(created.body.key_id as string), event_type: 'key.created' },
      ]);
      // deleted on b: a's next event enqueues nothing (and fails nothing)
      expect((await call(b, o.apiKey, 'DELETE', `/v1/webhooks/${hook.body.id}`)).status).toBe(204);
      const gone = await call(a, o.apiKey, 'POST', '/v1/api-keys', { name: 'gone' });
      expect(gone.status).toBe(201);
      const goneEvent = await eventOf(gone.body.key_id as string);
      const enqueued = await (stores[0] as Store).db
        .selectFrom('webhook_deliveries')
        .select('id')
        .where('event_id', '=', goneEvent)
        .execute();
      expect(enqueued).toEqual([]);
    });
  },
);
