import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { migrationProvider } from '../../src/server/store/migrations.js';
import {
  describeUrl,
  LISTENER_APPLICATION_NAME,
  openPostgresStore,
  type PostgresStore,
} from '../../src/server/store/postgres.js';
import { postgresAvailability, startPostgres, type TestPostgres, uniqueDbName } from '../helpers/postgres.js';
import { requirePart } from '../helpers/require.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** What only PostgreSQL has to get right: concurrent migrations, LISTEN/NOTIFY, driver types. */

const avail = postgresAvailability();
const skip = requirePart('PostgreSQL', avail.available, avail.why);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 5_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe.skipIf(skip)('PostgreSQL store', () => {
  let pgs: TestPostgres;
  const opened: PostgresStore[] = [];
  const errors: string[] = [];
  const open = async (url: string, opts: Parameters<typeof openPostgresStore>[1] = {}) => {
    const s = await openPostgresStore(url, { onError: (_e, ctx) => errors.push(ctx), ...opts });
    opened.push(s);
    return s;
  };

  beforeAll(async () => {
    pgs = await startPostgres();
  });
  afterAll(async () => {
    for (const s of opened) await s.close().catch(() => {});
    await pgs?.stop();
  });

  test('four instances starting at once on a fresh database all succeed; each migration runs once', async () => {
    const expected = Object.keys(await migrationProvider.getMigrations()).sort();
    // a few rounds: the race on creating Kysely's own tables differs from one start to the next
    for (let round = 0; round < 3; round++) {
      const url = await pgs.createDatabase(uniqueDbName('migrate'));
      const stores = await Promise.all([open(url), open(url), open(url), open(url)]);
      const rows = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(
        stores[0]!.db,
      );
      expect(rows.rows.map((r) => r.name)).toEqual(expected);
      // every instance sees the full schema and can write
      for (const [i, s] of stores.entries()) {
        const u = await s.users.ensure(`m${i}@example.com`);
        expect(await stores[(i + 1) % 4]!.users.get(u.id)).toEqual(u);
      }
      // a later start on the migrated database is a no-op
      const late = await open(url);
      const again = await sql<{ n: number }>`select count(*) as n from kysely_migration`.execute(late.db);
      expect(again.rows[0]?.n).toBe(expected.length);
      for (const s of [...stores, late]) await s.close();
    }
  });

  test('pooled connections dropped by the server are replaced; the process keeps running', async () => {
    const url = await pgs.createDatabase(uniqueDbName('pool'));
    const store = await open(url);
    const user = await store.users.ensure('pool@example.com');
    // several pooled connections, now idle
    await Promise.all(Array.from({ length: 4 }, () => store.users.get(user.id)));
    const dbName = new URL(url).pathname.slice(1);
    const lostBefore = errors.filter((e) => e === 'idle pooled connection lost').length;
    const killed = await pgs.query(
      "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'breeze' and datname = $1",
      [dbName],
    );
    expect(killed.length).toBeGreaterThan(0);
    // each dropped idle connection is reported and leaves the pool (instead of crashing the process)
    await waitFor('the pool to notice every drop', () =>
      errors.filter((e) => e === 'idle pooled connection lost').length - lostBefore >= killed.length
        ? true
        : undefined,
    );
    expect(await store.users.get(user.id)).toEqual(user);
  });

  test('an unreachable database fails the start with a clear message that holds no password', async () => {
    const attempt = openPostgresStore('postgres://breeze:s3cret-pw@127.0.0.1:1/breeze', {
      onError: () => {},
    });
    await expect(attempt).rejects.toThrow(
      /^Cannot connect to PostgreSQL at 127\.0\.0\.1:1\/breeze: .*ECONNREFUSED/,
    );
    await expect(attempt).rejects.not.toThrow(/s3cret-pw/);
    expect(describeUrl('postgres://u:p@/breeze?host=/var/run/postgresql')).toBe('/var/run/postgresql/breeze');
    // passwords someone forgot to percent-encode
    for (const pw of ['p@ss', 'p/ss', 'p?ss', 'p#ss']) {
      expect(describeUrl(`postgres://u:${pw}@db.internal:5432/breeze`)).toBe('db.internal:5432/breeze');
    }
  });

  test('driver types match what the repositories expect', async () => {
    const store = await open(await pgs.createDatabase(uniqueDbName('types'), { icuLocale: 'en-US' }));
    const user = await store.users.ensure('types@example.com');
    // integer columns and count(*) (a bigint) come back as numbers, as on SQLite
    const counted = await store.db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    expect(counted.n).toBe(1);
    const interval = await sql<{
      i: number;
      big: number;
    }>`select 5::integer as i, 9007199254740991::bigint as big`.execute(store.db);
    expect(interval.rows[0]).toEqual({ i: 5, big: 9007199254740991 });
    // numUpdatedRows is a bigint on every dialect; the repos wrap it in Number()
    const res = await store.db.updateTable('users').set({ created_at: user.created_at }).executeTakeFirst();
    expect(res.numUpdatedRows).toBe(1n);
    // timestamps are text in ISO form: they compare as instants do, under an ICU collation too
    const later = await sql<{
      lt: boolean;
    }>`select ${'2030-01-01T00:00:00.000Z'}::text < ${'2030-01-01T00:00:00.001Z'}::text as lt`.execute(
      store.db,
    );
    expect(later.rows[0]?.lt).toBe(true);
  });

  test('a key change published by one instance reaches the others (and the publisher only once)', async () => {
    const url = await pgs.createDatabase(uniqueDbName('notify'));
    const [a, b, c] = await Promise.all([open(url), open(url), open(url)]);
    const heard = { a: [] as string[], b: [] as string[], c: [] as string[] };
    a!.onKeyChange((id) => heard.a.push(id));
    b!.onKeyChange((id) => heard.b.push(id));
    c!.onKeyChange((id) => heard.c.push(id));
    const t0 = performance.now();
    await a!.publishKeyChange('key_1');
    expect(heard.a).toEqual(['key_1']);
    await waitFor('b and c to hear key_1', () => (heard.b.length && heard.c.length ? true : undefined));
    const latency = performance.now() - t0;
    expect(latency).toBeLessThan(1000);
    await sleep(200);
    expect(heard).toEqual({ a: ['key_1'], b: ['key_1'], c: ['key_1'] });
  });

  test('the LISTEN connection comes back after the server drops it', async () => {
    const url = await pgs.createDatabase(uniqueDbName('reconnect'));
    let reconnects = 0;
    const a = await open(url);
    const b = await open(url, { onListenerReconnect: () => reconnects++ });
    const heard: string[] = [];
    b.onKeyChange((id) => heard.push(id));
    expect(b.listening).toBe(true);

    const dbName = new URL(url).pathname.slice(1);
    const killed = await pgs.query<{ ok: boolean }>(
      'select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name = $1 and datname = $2',
      [LISTENER_APPLICATION_NAME, dbName],
    );
    expect(killed.length).toBe(2); // a's and b's listeners
    await waitFor('b to reconnect', () => (reconnects > 0 ? true : undefined));
    expect(b.listening).toBe(true);
    expect(errors.some((e) => e.includes('listener'))).toBe(true);

    await a.publishKeyChange('key_after_reconnect');
    await waitFor('b to hear the key change', () =>
      heard.includes('key_after_reconnect') ? true : undefined,
    );
  });

  test('a listener whose payload handler throws reports it and keeps listening', async () => {
    const url = await pgs.createDatabase(uniqueDbName('throwing'));
    const [a, b] = await Promise.all([open(url), open(url)]);
    const heard: string[] = [];
    b.onKeyChange((id) => {
      if (id === 'key_bad') throw new Error('listener bug');
    });
    b.onKeyChange((id) => heard.push(id));
    await a.publishKeyChange('key_bad');
    await a.publishKeyChange('key_good');
    await waitFor('key_good on b', () => (heard.includes('key_good') ? true : undefined));
    expect(errors).toContain('a key-change listener failed');
    expect(b.listening).toBe(true);
  });

  describe('two apps on one database (in-process)', () => {
    let url: string;
    let serverA: TestServer;
    let serverB: TestServer;

    beforeAll(async () => {
      url = await pgs.createDatabase(uniqueDbName('apps'));
      // a long cache TTL: only the notification can make B refuse a revoked key quickly
      const config = { keyCacheTtlMs: 60_000 };
      serverA = await startTestServer({ store: await open(url), config });
      serverB = await startTestServer({ store: await open(url), config });
    });
    afterAll(async () => {
      await serverA?.close();
      await serverB?.close();
    });

    const me = (server: TestServer, key: string) =>
      server.app.inject({ method: 'GET', url: '/v1/me', headers: { 'xi-api-key': key } });

    async function msUntilRefused(server: TestServer, key: string): Promise<number> {
      const t0 = performance.now();
      for (;;) {
        const res = await me(server, key);
        const elapsed = performance.now() - t0;
        if (res.statusCode === 401) return elapsed;
        expect(res.statusCode).toBe(200);
        if (elapsed > 5_000) return elapsed;
        await sleep(10);
      }
    }

    for (const action of ['disable', 'delete'] as const) {
      test(`${action} on A: B, which had the key cached, refuses it within a second`, async () => {
        const admin = await serverA.seedKey({ email: 'apps@example.com' });
        const created = await serverA.app.inject({
          method: 'POST',
          url: '/v1/api-keys',
          headers: { 'xi-api-key': admin.apiKey },
          payload: { name: `to-${action}` },
        });
        const { api_key: key, key_id: keyId } = created.json();
        expect((await me(serverB, key)).statusCode).toBe(200); // cached on B for 60 s
        const res = await serverA.app.inject(
          action === 'disable'
            ? {
                method: 'POST',
                url: `/v1/api-keys/${keyId}/disable`,
                headers: { 'xi-api-key': admin.apiKey },
              }
            : { method: 'DELETE', url: `/v1/api-keys/${keyId}`, headers: { 'xi-api-key': admin.apiKey } },
        );
        expect(res.statusCode).toBe(action === 'disable' ? 200 : 204);
        expect(await msUntilRefused(serverB, key)).toBeLessThan(1000);
      });
    }
    test('without any notification (a change made straight in the database), the 500 ms cache still ends within a second', async () => {
      const serverC = await startTestServer({ store: await open(url) }); // default key cache TTL
      try {
        const { apiKey, keyId } = await serverC.seedKey({ email: 'backstop@example.com' });
        expect((await me(serverC, apiKey)).statusCode).toBe(200); // cached
        await serverC.store.db
          .updateTable('api_keys')
          .set({ disabled_at: new Date().toISOString() })
          .where('id', '=', keyId)
          .execute();
        expect(await msUntilRefused(serverC, apiKey)).toBeLessThan(1000);
      } finally {
        await serverC.close();
      }
    });
  });
  // last: it restarts the shared server
  test('after a database restart the listener reconnects (with backoff) and the pool recovers', async () => {
    const url = await pgs.createDatabase(uniqueDbName('restart'));
    let reconnects = 0;
    const a = await open(url);
    const b = await open(url, { onListenerReconnect: () => reconnects++ });
    const user = await a.users.ensure('restart@example.com');
    const heard: string[] = [];
    b.onKeyChange((id) => heard.push(id));

    // down for 1.5 s: several reconnect attempts fail before one succeeds
    await pgs.restart({ downMs: 1_500 });
    await waitFor('b to reconnect', () => (reconnects > 0 ? true : undefined), 15_000);
    expect(errors).toContain('key-change listener could not reconnect; retrying');

    // idle pooled connections died with the server; the pool replaces them
    await waitFor(
      'a query to succeed',
      async () => (await a.users.get(user.id).catch(() => undefined)) && true,
    );
    expect(await b.users.get(user.id)).toEqual(user);
    await a.publishKeyChange('key_after_restart');
    await waitFor('b to hear it', () => (heard.includes('key_after_restart') ? true : undefined));
  });
});
