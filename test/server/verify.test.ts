import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { generateApiKey } from '../../src/core/api-key.js';
import { defaultConfig } from '../../src/server/config.js';
import type { JwtService } from '../../src/server/jwt.js';
import { testEngines } from '../helpers/engines.js';
import type { TestServer } from '../helpers/server.js';
import { openSse, revokedIds, type SseStream } from '../helpers/sse.js';

/**
 * Issue 13, server side, black box over HTTP on SQLite and PostgreSQL: `x-api-key`, the `verify`
 * scope, every answer of `POST /v1/keys/verify`, and the `GET /v1/keys/events` revocation stream
 * (each source of `key.revoked`, other organizations' keys kept out, `Last-Event-ID` resume, pings,
 * the per-key stream cap, shutdown with open streams).
 */

const eng = testEngines();
afterAll(() => eng.stop());
const uniq = () => randomBytes(4).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const e of eng.list) {
  describe.skipIf(e.skip)(e.name, () => {
    let s: TestServer;
    let base: string;
    const streams: SseStream[] = [];

    beforeAll(async () => {
      s = await e.startServer({ config: { keyExpiryPollMs: 100, eventsPingMs: 300, rateLimitPerKey: 1000 } });
      base = await s.app.listen({ host: '127.0.0.1', port: 0 });
    });
    afterAll(async () => {
      for (const st of streams) st.close();
      await s?.close();
    });

    async function call(key: string | Record<string, string>, method: string, url: string, payload?: object) {
      const headers = typeof key === 'string' ? { 'xi-api-key': key } : key;
      const res = await s.app.inject({
        method: method as 'GET',
        url,
        headers,
        ...(payload ? { payload } : {}),
      });
      return { status: res.statusCode, body: res.body ? res.json() : {}, headers: res.headers };
    }

    /** An owner with a verifier key (read,write,admin,verify) and a plain key (read,write) in their personal org. */
    async function owner() {
      const email = `owner-${uniq()}@example.com`;
      const verifier = await s.seedKey({ email, scopes: ['read', 'write', 'admin', 'verify'] });
      const target = await s.seedKey({ email, scopes: ['read', 'write'], name: 'target' });
      const me = await call(verifier.apiKey, 'GET', '/v1/me');
      return { email, verifier, target, orgId: me.body.org.id as string };
    }

    const verify = (caller: string, body: object) => call(caller, 'POST', '/v1/keys/verify', body);

    async function stream(key: string, headers: Record<string, string> = {}) {
      const st = await openSse(`${base}/v1/keys/events`, { 'xi-api-key': key, ...headers });
      streams.push(st);
      if (st.status === 200) await st.waitFor((ev) => ev.comment === 'connected');
      return st;
    }

    describe('POST /v1/keys/verify', () => {
      test('VALID: the key, its organization, project, user, effective scopes and rate limit', async () => {
        const o = await owner();
        const r = await verify(o.verifier.apiKey, { key: o.target.apiKey });
        expect(r.status).toBe(200);
        expect(r.body).toMatchObject({
          valid: true,
          code: 'VALID',
          key_id: o.target.keyId,
          org_id: o.orgId,
          user: { id: o.target.userId, email: o.email },
          scopes: ['read', 'write'],
          expires_at: null,
          ratelimit: { limit: 1000 },
        });
        expect(r.body.project_id).toMatch(/^proj_/);
        expect(r.body.ratelimit.remaining).toBeLessThan(1000);
        expect(r.body.ratelimit.reset_s).toBeGreaterThan(0);
        // scopes it holds pass
        expect((await verify(o.verifier.apiKey, { key: o.target.apiKey, scopes: ['write'] })).body.code).toBe(
          'VALID',
        );
      });

      test('MALFORMED: anything that is not a checksum-valid key', async () => {
        const o = await owner();
        const good = o.target.apiKey;
        const badSum = `${good.slice(0, -1)}${good.endsWith('A') ? 'B' : 'A'}`;
        for (const key of ['', 'hello', badSum, `${good} `, `brz_${'a'.repeat(100)}`, '\u0000brz_']) {
          const r = await verify(o.verifier.apiKey, { key });
          expect(r.status, key).toBe(200);
          expect(r.body, key).toEqual({ valid: false, code: 'MALFORMED' });
        }
      });

      test("NOT_FOUND: an unknown key, and another organization's key answers exactly the same", async () => {
        const o = await owner();
        const other = await s.seedKey({ email: `other-${uniq()}@example.com`, scopes: ['read', 'write'] });
        const missing = await verify(o.verifier.apiKey, { key: generateApiKey() });
        const foreign = await verify(o.verifier.apiKey, { key: other.apiKey });
        expect(missing.status).toBe(200);
        expect(missing.body).toEqual({ valid: false, code: 'NOT_FOUND' });
        expect(foreign.status).toBe(missing.status);
        expect(foreign.body).toEqual(missing.body);
        expect(foreign.headers['content-length']).toBe(missing.headers['content-length']);
        // and verifying it touched nothing of the other organization's key
        await sleep(100);
        expect((await s.store.keys.get(other.keyId))?.last_used_at).toBeNull();
        expect(s.app.breeze.usage.pending(other.keyId)).toEqual([]);
      });

      test('DISABLED and EXPIRED', async () => {
        const o = await owner();
        expect((await call(o.verifier.apiKey, 'POST', `/v1/api-keys/${o.target.keyId}/disable`)).status).toBe(
          200,
        );
        expect((await verify(o.verifier.apiKey, { key: o.target.apiKey })).body).toEqual({
          valid: false,
          code: 'DISABLED',
          key_id: o.target.keyId,
        });
        const expired = await s.seedKey({
          email: o.email,
          scopes: ['read'],
          expiresAt: new Date(Date.now() - 1000).toISOString(),
        });
        expect((await verify(o.verifier.apiKey, { key: expired.apiKey })).body).toMatchObject({
          valid: false,
          code: 'EXPIRED',
        });
      });

      test('INSUFFICIENT_SCOPE: scopes beyond the effective ones (the role caps them)', async () => {
        const o = await owner();
        expect(
          (await verify(o.verifier.apiKey, { key: o.target.apiKey, scopes: ['admin'] })).body,
        ).toMatchObject({
          valid: false,
          code: 'INSUFFICIENT_SCOPE',
        });
        // a member's admin-scoped key in an organization: effective read,write only
        const { org, project } = await s.store.transaction((tx) =>
          tx.orgs.create(`Org ${uniq()}`, o.verifier.userId),
        );
        const member = await s.store.users.ensure(`m-${uniq()}@example.com`);
        await s.store.orgs.addMember(org.id, member.id, 'member');
        const memberKey = await s.app.breeze.keys.mint({
          userId: member.id,
          projectId: project.id,
          name: 'm',
          scopes: ['read', 'write', 'admin'],
          expiresAt: null,
          createdVia: 'api',
        });
        const orgVerifier = await s.app.breeze.keys.mint({
          userId: o.verifier.userId,
          projectId: project.id,
          name: 'v',
          scopes: ['read', 'verify'],
          expiresAt: null,
          createdVia: 'api',
        });
        const r = await verify(orgVerifier.apiKey, { key: memberKey.apiKey });
        expect(r.body).toMatchObject({ valid: true, scopes: ['read', 'write'] });
        expect(
          (await verify(orgVerifier.apiKey, { key: memberKey.apiKey, scopes: ['admin'] })).body.code,
        ).toBe('INSUFFICIENT_SCOPE');
        // the personal org's verifier does not see the other organization's key
        expect((await verify(o.verifier.apiKey, { key: memberKey.apiKey })).body.code).toBe('NOT_FOUND');
      });

      test('verifying is a use of the key: last_used_at moves', async () => {
        const o = await owner();
        expect(
          (await call(o.verifier.apiKey, 'GET', `/v1/api-keys/${o.target.keyId}`)).body.last_used_at,
        ).toBeNull();
        await verify(o.verifier.apiKey, { key: o.target.apiKey });
        await sleep(100);
        const read = await call(o.verifier.apiKey, 'GET', `/v1/api-keys/${o.target.keyId}`);
        expect(read.body.last_used_at).not.toBeNull();
      });

      test('bad input is 400 VALIDATION_FAILED, never 5xx', async () => {
        const o = await owner();
        for (const payload of [
          {},
          { key: 5 },
          { key: 'x'.repeat(5000) },
          { key: 'a', scopes: ['root'] },
          { key: 'a', scopes: 'read' },
        ]) {
          const r = await verify(o.verifier.apiKey, payload);
          expect(r.status, JSON.stringify(payload).slice(0, 40)).toBe(400);
          expect(r.body.error.code).toBe('VALIDATION_FAILED');
        }
      });

      test('who may verify: only a key with an effective "verify"; nothing else follows from it', async () => {
        const o = await owner();
        const other = await s.seedKey({ email: o.email, scopes: ['read'] });
        expect((await call({}, 'POST', '/v1/keys/verify', { key: other.apiKey })).status).toBe(401);
        const noVerify = await verify(o.target.apiKey, { key: other.apiKey });
        expect(noVerify.status).toBe(403);
        expect(noVerify.body.error.code).toBe('FORBIDDEN');
        const jwt = (s.app as unknown as { jwtService: JwtService }).jwtService;
        const token = (await jwt.issue(o.verifier.userId)).token;
        expect(
          (await call({ authorization: `Bearer ${token}` }, 'POST', '/v1/keys/verify', { key: other.apiKey }))
            .status,
        ).toBe(403);
        // a verify-only key (read is always present) manages nothing
        const created = await call(o.verifier.apiKey, 'POST', '/v1/api-keys', {
          name: 'v',
          scopes: ['verify'],
        });
        expect(created.status).toBe(201);
        expect(created.body.scopes).toEqual(['read', 'verify']);
        const v = created.body.api_key as string;
        expect((await verify(v, { key: other.apiKey })).body.code).toBe('VALID');
        expect((await call(v, 'GET', '/v1/api-keys')).status).toBe(403);
        expect((await call(v, 'POST', '/v1/api-keys', { name: 'x' })).status).toBe(403);
        expect((await call(v, 'POST', `/v1/api-keys/${other.keyId}/disable`)).status).toBe(403);
        expect((await call(v, 'POST', '/v1/orgs', { name: 'x' })).status).toBe(403);
      });

      test('a member cannot create (or hold) a verify key: 403; an admin can', async () => {
        const o = await owner();
        const { org, project } = await s.store.transaction((tx) =>
          tx.orgs.create(`Org ${uniq()}`, o.verifier.userId),
        );
        const member = await s.seedKey({
          email: `m-${uniq()}@example.com`,
          scopes: ['read', 'write', 'admin'],
        });
        const admin = await s.seedKey({
          email: `a-${uniq()}@example.com`,
          scopes: ['read', 'write', 'admin', 'verify'],
        });
        await s.store.orgs.addMember(org.id, member.userId, 'member');
        await s.store.orgs.addMember(org.id, admin.userId, 'admin');
        const byMember = await call(member.apiKey, 'POST', '/v1/api-keys', {
          name: 'v',
          scopes: ['verify'],
          project_id: project.id,
        });
        expect(byMember.status).toBe(403);
        expect(byMember.body.error.code).toBe('FORBIDDEN');
        const byAdmin = await call(admin.apiKey, 'POST', '/v1/api-keys', {
          name: 'v',
          scopes: ['read', 'verify'],
          project_id: project.id,
        });
        expect(byAdmin.status).toBe(201);
        // demoted to member, the admin's verify key stops verifying at once
        const target = await call(admin.apiKey, 'POST', '/v1/api-keys', {
          name: 't',
          project_id: project.id,
        });
        expect((await verify(byAdmin.body.api_key, { key: target.body.api_key })).body.code).toBe('VALID');
        const demote = await call(o.verifier.apiKey, 'PATCH', `/v1/orgs/${org.id}/members/${admin.userId}`, {
          role: 'member',
        });
        expect(demote.status).toBe(200);
        expect((await verify(byAdmin.body.api_key, { key: target.body.api_key })).status).toBe(403);
      });
    });

    describe('headers: xi-api-key, then x-api-key, then Bearer', () => {
      test('each header alone authenticates', async () => {
        const o = await owner();
        const alone: Record<string, string>[] = [
          { 'xi-api-key': o.target.apiKey },
          { 'x-api-key': o.target.apiKey },
          { authorization: `Bearer ${o.target.apiKey}` },
        ];
        for (const h of alone) {
          const r = await call(h, 'GET', '/v1/me');
          expect(r.status, Object.keys(h)[0]).toBe(200);
          expect(r.headers['x-breeze-api-key-id']).toBe(o.target.keyId);
        }
      });

      test('a present header of higher rank decides alone, even when it is wrong', async () => {
        const o = await owner();
        const good = o.target.apiKey;
        const bad = generateApiKey();
        const cases: Array<[Record<string, string>, number, string?]> = [
          [{ 'xi-api-key': bad, 'x-api-key': good }, 401],
          [{ 'x-api-key': bad, authorization: `Bearer ${good}` }, 401],
          [{ 'x-api-key': 'garbage', authorization: `Bearer ${good}` }, 401],
          [{ 'xi-api-key': good, 'x-api-key': bad }, 200, o.target.keyId],
          [{ 'x-api-key': good, authorization: `Bearer ${bad}` }, 200, o.target.keyId],
          [{ 'x-api-key': o.verifier.apiKey, authorization: `Bearer ${good}` }, 200, o.verifier.keyId],
        ];
        for (const [h, status, keyId] of cases) {
          // twice: the second answer comes from the verification cache
          for (let i = 0; i < 2; i++) {
            const r = await call(h, 'GET', '/v1/me');
            expect(r.status, JSON.stringify(Object.keys(h))).toBe(status);
            if (keyId) expect(r.body.auth.key_id).toBe(keyId);
            else expect(r.body.error.code).toBe('AUTH_REQUIRED');
          }
        }
      });
    });

    describe('GET /v1/keys/events', () => {
      test('key.revoked for disable, delete, narrowing and a removed creator; nothing of other organizations', async () => {
        const o = await owner();
        const st = await stream(o.verifier.apiKey);
        expect(st.headers.get('content-type')).toMatch(/^text\/event-stream/);
        const other = await owner();
        // another organization's revocation first: it must never show up here
        await call(other.verifier.apiKey, 'POST', `/v1/api-keys/${other.target.keyId}/disable`);

        await call(o.verifier.apiKey, 'POST', `/v1/api-keys/${o.target.keyId}/disable`);
        await st.waitFor(
          (ev) => ev.event === 'key.revoked' && ev.data === JSON.stringify({ key_id: o.target.keyId }),
        );
        // enabling again is no revocation; disabling twice announces once
        await call(o.verifier.apiKey, 'POST', `/v1/api-keys/${o.target.keyId}/enable`);

        const k2 = await s.seedKey({ email: o.email, scopes: ['read', 'write'] });
        await call(o.verifier.apiKey, 'DELETE', `/v1/api-keys/${k2.keyId}`);
        await st.waitFor((ev) => ev.data === JSON.stringify({ key_id: k2.keyId }));

        const k3 = await s.seedKey({ email: o.email, scopes: ['read', 'write'] });
        const renamed = await call(o.verifier.apiKey, 'PATCH', `/v1/api-keys/${k3.keyId}`, {
          name: 'renamed',
        });
        expect(renamed.status).toBe(200);
        const widened = await call(o.verifier.apiKey, 'PATCH', `/v1/api-keys/${k3.keyId}`, {
          scopes: ['read', 'write', 'admin'],
        });
        expect(widened.status).toBe(200);
        await call(o.verifier.apiKey, 'PATCH', `/v1/api-keys/${k3.keyId}`, { scopes: ['read'] });
        await st.waitFor((ev) => ev.data === JSON.stringify({ key_id: k3.keyId }));

        // a member of a team organization is removed: their keys there are revoked
        const { org, project } = await s.store.transaction((tx) =>
          tx.orgs.create(`Org ${uniq()}`, o.verifier.userId),
        );
        const teamVerifier = await s.app.breeze.keys.mint({
          userId: o.verifier.userId,
          projectId: project.id,
          name: 'tv',
          scopes: ['read', 'verify'],
          expiresAt: null,
          createdVia: 'api',
        });
        const teamStream = await stream(teamVerifier.apiKey);
        const member = await s.store.users.ensure(`m-${uniq()}@example.com`);
        await s.store.orgs.addMember(org.id, member.id, 'admin');
        const mk = await s.app.breeze.keys.mint({
          userId: member.id,
          projectId: project.id,
          name: 'mk',
          scopes: ['read', 'write'],
          expiresAt: null,
          createdVia: 'api',
        });
        const mk2 = await s.app.breeze.keys.mint({
          userId: member.id,
          projectId: project.id,
          name: 'mk2',
          scopes: ['read', 'write', 'admin'],
          expiresAt: null,
          createdVia: 'api',
        });
        // admin -> member narrows mk2 (admin dropped) but not mk
        expect(
          (
            await call(o.verifier.apiKey, 'PATCH', `/v1/orgs/${org.id}/members/${member.id}`, {
              role: 'member',
            })
          ).status,
        ).toBe(200);
        await teamStream.waitFor((ev) => ev.data === JSON.stringify({ key_id: mk2.row.id }));
        expect(revokedIds(teamStream.events)).not.toContain(mk.row.id);
        expect(
          (await call(o.verifier.apiKey, 'DELETE', `/v1/orgs/${org.id}/members/${member.id}`)).status,
        ).toBe(204);
        await teamStream.waitFor((ev) => ev.data === JSON.stringify({ key_id: mk.row.id }));

        await sleep(300);
        const mine = revokedIds(st.events);
        expect(mine).toEqual([o.target.keyId, k2.keyId, k3.keyId]);
        expect(mine).not.toContain(other.target.keyId);
        // narrowed first, then (removal) every key of the member
        const team = revokedIds(teamStream.events);
        expect(team[0]).toBe(mk2.row.id);
        expect(new Set(team.slice(1))).toEqual(new Set([mk.row.id, mk2.row.id]));
        // ids increase
        const ids = st.events.filter((ev) => ev.id).map((ev) => Number(ev.id));
        expect([...ids].sort((a, b) => a - b)).toEqual(ids);
      });

      test('rotation: key.revoked within a second of the grace end', async () => {
        const o = await owner();
        const st = await stream(o.verifier.apiKey);
        const rotated = await call(o.verifier.apiKey, 'POST', `/v1/api-keys/${o.target.keyId}/rotate`, {
          grace_period_s: 1,
        });
        expect(rotated.status).toBe(201);
        const graceEnd = Date.parse(rotated.body.previous.expires_at);
        await st.waitFor((ev) => ev.data === JSON.stringify({ key_id: o.target.keyId }), 4000);
        const late = Date.now() - graceEnd;
        expect(late).toBeGreaterThanOrEqual(0);
        expect(late).toBeLessThan(1000);
        // grace 0: at once
        const r0 = await call(o.verifier.apiKey, 'POST', `/v1/api-keys/${rotated.body.key_id}/rotate`, {
          grace_period_s: 0,
        });
        expect(r0.status).toBe(201);
        const t0 = Date.now();
        await st.waitFor((ev) => ev.data === JSON.stringify({ key_id: rotated.body.key_id }), 3000);
        expect(Date.now() - t0).toBeLessThan(1000);
      });

      test('Last-Event-ID resumes after a dropped stream with exactly the missed events', async () => {
        const o = await owner();
        const keys = await Promise.all([1, 2, 3].map(() => s.seedKey({ email: o.email, scopes: ['read'] })));
        const first = await stream(o.verifier.apiKey);
        await call(o.verifier.apiKey, 'POST', `/v1/api-keys/${keys[0]!.keyId}/disable`);
        const seen = await first.waitFor((ev) => ev.event === 'key.revoked');
        first.close();
        await sleep(100);
        // missed while disconnected
        await call(o.verifier.apiKey, 'POST', `/v1/api-keys/${keys[1]!.keyId}/disable`);
        await call(o.verifier.apiKey, 'DELETE', `/v1/api-keys/${keys[2]!.keyId}`);
        const resumed = await stream(o.verifier.apiKey, { 'last-event-id': seen.id! });
        await resumed.waitFor((ev) => ev.data === JSON.stringify({ key_id: keys[2]!.keyId }));
        expect(revokedIds(resumed.events)).toEqual([keys[1]!.keyId, keys[2]!.keyId]);
        // and it follows live after the replay
        const k4 = await s.seedKey({ email: o.email, scopes: ['read'] });
        await call(o.verifier.apiKey, 'POST', `/v1/api-keys/${k4.keyId}/disable`);
        await resumed.waitFor((ev) => ev.data === JSON.stringify({ key_id: k4.keyId }));
        // the replay is read before the headers go out: a slow query delays the headers, never the
        // missed events after them (a client trusts its cache again once the stream is up)
        const repo = s.store.keyEvents;
        const after = repo.after.bind(repo);
        repo.after = async (...args: Parameters<typeof repo.after>) => {
          await sleep(400);
          return after(...args);
        };
        try {
          const t0 = Date.now();
          const slow = await stream(o.verifier.apiKey, { 'last-event-id': seen.id! });
          const headersAt = Date.now() - t0;
          expect(headersAt).toBeGreaterThanOrEqual(390);
          const t1 = Date.now();
          await slow.waitFor((ev) => ev.data === JSON.stringify({ key_id: keys[2]!.keyId }), 3000);
          expect(Date.now() - t1).toBeLessThan(200);
          slow.close();
        } finally {
          repo.after = after;
        }
        // a garbage Last-Event-ID is a 400 in the error shape
        const bad = await openSse(`${base}/v1/keys/events`, {
          'xi-api-key': o.verifier.apiKey,
          'last-event-id': 'abc',
        });
        expect(bad.status).toBe(400);
        expect((bad.body as { error: { code: string } }).error.code).toBe('VALIDATION_FAILED');
      });

      test(': ping comments keep the stream alive', async () => {
        const o = await owner();
        const st = await stream(o.verifier.apiKey);
        await st.waitFor((ev) => ev.comment === 'ping', 2000);
      });

      test('at most 5 streams per key (429 in the error shape); a closed one frees its slot', async () => {
        const o = await owner();
        const open = [];
        for (let i = 0; i < 5; i++) open.push(await stream(o.verifier.apiKey));
        const sixth = await stream(o.verifier.apiKey);
        expect(sixth.status).toBe(429);
        expect((sixth.body as { error: { code: string } }).error.code).toBe('RATE_LIMITED');
        expect(sixth.headers.get('retry-after')).toMatch(/^\d+$/);
        open[0]!.close();
        await sleep(200);
        const again = await stream(o.verifier.apiKey);
        expect(again.status).toBe(200);
      });

      test('only a verify key may listen', async () => {
        const o = await owner();
        const st = await stream(o.target.apiKey);
        expect(st.status).toBe(403);
        const none = await openSse(`${base}/v1/keys/events`, {});
        expect(none.status).toBe(401);
      });
    });
  });
}

test('by default the stream pings with a margin under the 15 s PLATFORM.md allows between pings', () => {
  const { eventsPingMs } = defaultConfig();
  expect(eventsPingMs).toBeGreaterThan(0);
  expect(eventsPingMs).toBeLessThanOrEqual(12_000);
});

describe.skipIf(eng.list[0]!.skip)('shutdown', () => {
  test('app.close() ends open streams instead of hanging', async () => {
    const s = await eng.list[0]!.startServer({ config: { eventsPingMs: 60_000 } });
    const base = await s.app.listen({ host: '127.0.0.1', port: 0 });
    const v = await s.seedKey({ scopes: ['read', 'verify'] });
    const st = await openSse(`${base}/v1/keys/events`, { 'xi-api-key': v.apiKey });
    expect(st.status).toBe(200);
    const t0 = Date.now();
    await s.close();
    expect(Date.now() - t0).toBeLessThan(2000);
    await st.ended;
  });
});
