/**
 * Issue 13's promise through the SDK, on PostgreSQL: a key disabled on instance A is refused by a
 * service whose verifier talks to instance B within one second, although the verifier holds the
 * key's VALID answer for 60 s: only the revocation stream (NOTIFY from A to B, then SSE) can tell it.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { createVerifier } from '../../packages/verify/src/verifier.js';
import { until } from '../../packages/verify/test/fake-breeze.js';
import { openStore, type Store } from '../../src/server/store/index.js';
import { postgresAvailability, startPostgres, type TestPostgres, uniqueDbName } from '../helpers/postgres.js';
import { requirePart } from '../helpers/require.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const pgAvail = postgresAvailability();
const skipPg = requirePart('PostgreSQL', pgAvail.available, pgAvail.why);
let pg: TestPostgres | undefined;
const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await pg?.stop();
});

async function instance(databaseUrl: string): Promise<TestServer & { own: Store }> {
  const own = await openStore({ databaseUrl });
  const s = await startTestServer({ store: own });
  cleanups.push(async () => {
    await s.close().catch(() => {});
    await own.close().catch(() => {});
  });
  return Object.assign(s, { own });
}

describe.skipIf(skipPg)('SDK against instance B, key disabled on instance A (PostgreSQL)', () => {
  test('refused within 1 s, 20 tries (median and max reported)', { timeout: 120_000 }, async () => {
    pg = await startPostgres();
    const databaseUrl = await pg.createDatabase(uniqueDbName('sdkx'));
    const a = await instance(databaseUrl);
    const b = await instance(databaseUrl);
    const bUrl = await b.app.listen({ host: '127.0.0.1', port: 0 });
    const owner = await a.seedKey({ email: 'o@example.com', scopes: ['read', 'write', 'admin', 'verify'] });
    const verifier = createVerifier({ server: bUrl, apiKey: owner.apiKey, cacheTtlMs: 60_000 });
    cleanups.push(() => verifier.close());
    await until(() => verifier.streamConnected, 10_000);
    const delays: number[] = [];
    for (let i = 0; i < 20; i++) {
      const k = await a.seedKey({ email: 'o@example.com', scopes: ['read'] });
      expect(await verifier.verify(k.apiKey)).toMatchObject({ valid: true, key_id: k.keyId });
      expect(await verifier.verify(k.apiKey)).toMatchObject({ valid: true }); // from the cache now
      const t0 = performance.now();
      const res = await a.app.inject({
        method: 'POST',
        url: `/v1/api-keys/${k.keyId}/disable`,
        headers: { 'xi-api-key': owner.apiKey },
      });
      expect(res.statusCode).toBe(200);
      let last = '';
      while (performance.now() - t0 < 2000) {
        last = (await verifier.verify(k.apiKey)).code;
        if (last !== 'VALID') break;
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(last).toBe('DISABLED');
      delays.push(performance.now() - t0);
    }
    const sorted = [...delays].sort((x, y) => x - y);
    const median = (sorted[9]! + sorted[10]!) / 2;
    console.log(
      `SDK on B refuses a key disabled on A, 20 tries: median ${median.toFixed(1)} ms, min ${sorted[0]!.toFixed(1)} ms, max ${sorted[19]!.toFixed(1)} ms`,
    );
    expect(sorted[19]).toBeLessThan(1000);
  });
});
