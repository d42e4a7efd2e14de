import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEngines } from '../helpers/engines.js';
import type { TestServer } from '../helpers/server.js';

/**
 * Key operations of API.md "API keys", black-box over HTTP on both engines:
 * - of concurrent rotations of one key exactly one succeeds, the rest get 409; an already rotated
 *   key is 409 too (also when the key expires before now + grace: the old check-and-set compared
 *   `expires_at`, which such a rotation leaves unchanged);
 * - a key rotating itself keeps the old key alive at most 7 days, whatever grace it asks for;
 * - enable / disable / patch of another key need every scope of that key.
 */
const eng = testEngines();
afterAll(() => eng.stop());

const DAY_MS = 86400_000;
const TEN_YEARS_S = 10 * 365 * 86400;

interface Key {
  key_id: string;
  api_key?: string;
  expires_at: string | null;
  status: string;
  scopes: string[];
  rotated_from: string | null;
}

for (const engine of eng.list) {
  describe.skipIf(engine.skip)(`key operations on ${engine.name}`, () => {
    let s: TestServer;
    let admin = '';

    beforeAll(async () => {
      s = await engine.startServer({ config: { rateLimitPerKey: 0 } });
      admin = (await s.seedKey({ email: `ops-${engine.name}@example.com` })).apiKey;
    }, 60_000);
    afterAll(() => s?.close());

    async function call(method: 'GET' | 'POST' | 'PATCH', url: string, key: string, payload?: object) {
      return s.app.inject({ method, url, headers: { 'xi-api-key': key }, ...(payload ? { payload } : {}) });
    }

    async function createKey(body: object): Promise<Key> {
      const res = await call('POST', '/v1/api-keys', admin, body);
      expect(res.statusCode, res.body).toBe(201);
      return res.json();
    }

    async function successorsOf(keyId: string): Promise<Key[]> {
      const res = await call('GET', '/v1/api-keys?limit=200', admin);
      return (res.json().data as Key[]).filter((k) => k.rotated_from === keyId);
    }

    /** Fires `n` rotations of one key at once; returns the status codes and error codes. */
    async function rotateConcurrently(keyId: string, callerKey: string, n: number, body?: object) {
      const results = await Promise.all(
        Array.from({ length: n }, () => call('POST', `/v1/api-keys/${keyId}/rotate`, callerKey, body ?? {})),
      );
      return results.map((r) => ({
        status: r.statusCode,
        code: r.statusCode === 201 ? null : r.json().error.code,
      }));
    }

    const ROUNDS = 12;
    const N = 6;
    const cases: Array<{ what: string; key: () => object; grace?: number; self?: boolean }> = [
      { what: 'a key without expiry', key: () => ({ name: 'race', scopes: ['read', 'write'] }) },
      // expires in 10 min, default grace 1 h: the old expiry stays as it is
      { what: 'a key expiring before now + grace', key: () => ({ name: 'race', expires_in_s: 600 }) },
      { what: 'a key with grace 0', key: () => ({ name: 'race' }), grace: 0 },
      { what: 'a key rotating itself', key: () => ({ name: 'race', scopes: ['read'] }), self: true },
    ];
    for (const c of cases) {
      it(`of ${N} concurrent rotations of ${c.what}, exactly one wins (${ROUNDS} rounds)`, async () => {
        for (let round = 0; round < ROUNDS; round++) {
          const key = await createKey(c.key());
          const caller = c.self ? (key.api_key as string) : admin;
          const body = c.grace === undefined ? {} : { grace_period_s: c.grace };
          const out = await rotateConcurrently(key.key_id, caller, N, body);
          const wins = out.filter((o) => o.status === 201);
          expect(wins, `round ${round}: ${JSON.stringify(out)}`).toHaveLength(1);
          for (const o of out.filter((x) => x.status !== 201)) {
            expect(o, `round ${round}`).toEqual({ status: 409, code: 'CONFLICT' });
          }
          expect(await successorsOf(key.key_id)).toHaveLength(1);
        }
      }, 120_000);
    }

    it('of concurrent deletes of one key exactly one answers 204, the rest 404 (it no longer exists)', async () => {
      for (let round = 0; round < ROUNDS; round++) {
        const key = await createKey({ name: 'gone' });
        const results = await Promise.all(
          Array.from({ length: N }, () =>
            s.app.inject({
              method: 'DELETE',
              url: `/v1/api-keys/${key.key_id}`,
              headers: { 'xi-api-key': admin },
            }),
          ),
        );
        const out = results.map((r) => `${r.statusCode}:${r.statusCode === 204 ? '' : r.json().error.code}`);
        expect(
          out.filter((o) => o === '204:'),
          `round ${round}: ${out.join(' ')}`,
        ).toHaveLength(1);
        expect(out.filter((o) => o === '404:NOT_FOUND')).toHaveLength(N - 1);
      }
    }, 120_000);

    it('answers 409 to rotating a key that was already rotated, and lets its successor rotate', async () => {
      const key = await createKey({ name: 'twice', expires_in_s: 600 });
      const first = await call('POST', `/v1/api-keys/${key.key_id}/rotate`, admin, {});
      expect(first.statusCode).toBe(201);
      expect(first.json().previous.status).toBe('expiring');
      const again = await call('POST', `/v1/api-keys/${key.key_id}/rotate`, admin, {});
      expect(again.statusCode).toBe(409);
      expect(again.json().error.code).toBe('CONFLICT');
      expect(again.json().error.message).toMatch(/already rotated/);
      // the old key itself, still valid for its grace period, cannot mint another successor either
      const self = await call('POST', `/v1/api-keys/${key.key_id}/rotate`, key.api_key as string, {});
      expect(self.statusCode).toBe(409);
      expect((await call('GET', '/v1/me', key.api_key as string)).statusCode).toBe(200);
      // its successor rotates normally
      const next = await call('POST', `/v1/api-keys/${first.json().key_id}/rotate`, admin, {});
      expect(next.statusCode).toBe(201);
      expect(await successorsOf(key.key_id)).toHaveLength(1);
    });

    it('bounds the grace of a self-rotation to 7 days (a 10-year grace asked for)', async () => {
      const key = await createKey({ name: 'self', scopes: ['read'] });
      const before = Date.now();
      const res = await call('POST', `/v1/api-keys/${key.key_id}/rotate`, key.api_key as string, {
        grace_period_s: TEN_YEARS_S,
      });
      expect(res.statusCode, res.body).toBe(201);
      const oldExpiry = Date.parse(res.json().previous.expires_at);
      expect(oldExpiry).toBeLessThanOrEqual(Date.now() + 7 * DAY_MS);
      expect(oldExpiry).toBeGreaterThanOrEqual(before + 7 * DAY_MS - 60_000);
      // the same key cannot clone itself again while its old self is alive
      const again = await call('POST', `/v1/api-keys/${key.key_id}/rotate`, key.api_key as string, {
        grace_period_s: TEN_YEARS_S,
      });
      expect(again.statusCode).toBe(409);
      // the old key's record, as the server keeps it
      const read = await call('GET', `/v1/api-keys/${key.key_id}`, admin);
      expect(Date.parse(read.json().expires_at)).toBe(oldExpiry);
    });

    it('lets an admin rotating another key give it the long grace it asks for', async () => {
      const key = await createKey({ name: 'other' });
      const res = await call('POST', `/v1/api-keys/${key.key_id}/rotate`, admin, {
        grace_period_s: TEN_YEARS_S,
      });
      expect(res.statusCode).toBe(201);
      expect(Date.parse(res.json().previous.expires_at)).toBeGreaterThan(Date.now() + 9 * 365 * DAY_MS);
    });

    it('refuses enable, disable and patch of a key wider than the caller (403), allows narrower ones', async () => {
      const wide = await createKey({ name: 'wide', scopes: ['read', 'write', 'admin'] });
      const narrowAdmin = await createKey({ name: 'narrow admin', scopes: ['read', 'admin'] });
      const readOnly = await createKey({ name: 'read only', scopes: ['read'] });
      const caller = narrowAdmin.api_key as string;
      // the owner disabled the wide key
      expect((await call('POST', `/v1/api-keys/${wide.key_id}/disable`, admin)).json().status).toBe(
        'disabled',
      );

      const enable = await call('POST', `/v1/api-keys/${wide.key_id}/enable`, caller);
      expect(enable.statusCode, enable.body).toBe(403);
      expect(enable.json().error.code).toBe('FORBIDDEN');
      expect(enable.json().error.message).toContain('write');
      expect((await call('GET', `/v1/api-keys/${wide.key_id}`, admin)).json().status).toBe('disabled');
      // and the wide key indeed stays refused
      expect((await call('GET', '/v1/me', wide.api_key as string)).statusCode).toBe(401);

      expect((await call('POST', `/v1/api-keys/${wide.key_id}/enable`, admin)).statusCode).toBe(200);
      const disable = await call('POST', `/v1/api-keys/${wide.key_id}/disable`, caller);
      expect(disable.statusCode).toBe(403);
      expect((await call('GET', '/v1/me', wide.api_key as string)).statusCode).toBe(200);

      const patch = await call('PATCH', `/v1/api-keys/${wide.key_id}`, caller, { name: 'renamed' });
      expect(patch.statusCode).toBe(403);
      const narrowed = await call('PATCH', `/v1/api-keys/${wide.key_id}`, caller, { scopes: ['read'] });
      expect(narrowed.statusCode).toBe(403);

      // a key within the caller's scopes: allowed
      expect((await call('POST', `/v1/api-keys/${readOnly.key_id}/disable`, caller)).json().status).toBe(
        'disabled',
      );
      expect((await call('POST', `/v1/api-keys/${readOnly.key_id}/enable`, caller)).json().status).toBe(
        'active',
      );
      expect(
        (await call('PATCH', `/v1/api-keys/${readOnly.key_id}`, caller, { name: 'ro' })).json().name,
      ).toBe('ro');
      // and its own key
      expect((await call('POST', `/v1/api-keys/${narrowAdmin.key_id}/disable`, caller)).statusCode).toBe(200);
    });
  });
}
