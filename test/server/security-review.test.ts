import { randomBytes } from 'node:crypto';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loggerOptions } from '../../src/server/logging.js';
import type { MailMessage } from '../../src/server/mail/mailer.js';
import { parseSince } from '../../src/server/routes/audit-events.js';
import { SYSTEM_META } from '../../src/server/services/audit.js';
import { LeakService } from '../../src/server/services/leaks.js';
import { claimMatches, MAX_CLAIM_WILDCARDS } from '../../src/server/services/oidc.js';
import { testEngines } from '../helpers/engines.js';
import { startTestIssuer, type TestIssuer } from '../helpers/oidc-issuer.js';
import type { TestServer } from '../helpers/server.js';
import { openSse, type SseStream } from '../helpers/sse.js';
import { type Receiver, startReceiver } from '../helpers/webhook-receiver.js';

/**
 * Fixes of the wave-2 security review, black box over HTTP on SQLite and PostgreSQL where storage
 * is involved: claim globs without a backtracking regex, leak reports announcing `key.revoked`, a
 * stream ending when its own key is revoked, unverified `iss` checked before any query, `since`
 * far back, audit events of trust deletes and leak-policy changes, the address guard of issuer
 * fetches, the leak mail map's hard cap, and webhook pings without the URL's query.
 */

const eng = testEngines();
afterAll(() => eng.stop());
const uniq = () => randomBytes(4).toString('hex');
type Json = Record<string, unknown>;

describe('claim globs', () => {
  test('a value of many wildcards against a long non-matching claim answers at once', () => {
    const long = 'a'.repeat(200);
    // a backtracking regex takes about a second on the first and forever on the last
    // (the fastest of 5 tries: a busy machine may pause any one of them; backtracking is slow on all)
    for (const pattern of [`${'*'.repeat(MAX_CLAIM_WILDCARDS)}#`, '*a*a*a*#', '*a*a*a*a*#', '**********#']) {
      let fastest = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        expect(claimMatches(pattern, long)).toBe(false);
        fastest = Math.min(fastest, performance.now() - t0);
      }
      expect(fastest, pattern).toBeLessThan(50);
    }
    // still a glob: * is any run (also empty), everything else literal
    expect(claimMatches('**', 'x')).toBe(true);
    expect(claimMatches('*', '')).toBe(true);
    expect(claimMatches('a*b*c', 'abc')).toBe(true);
    expect(claimMatches('a*b*c', 'a-b-c-d')).toBe(false);
    expect(claimMatches('*/main', 'refs/heads/main')).toBe(true);
    expect(claimMatches('refs/*/ma?n', 'refs/heads/main')).toBe(false);
    expect(claimMatches('ab*', 'a')).toBe(false);
  });
});

test('a since duration reaching back before 1970 is clamped to 1970 (never an invalid or negative-year time)', () => {
  const now = new Date('2026-12-01T00:00:00Z');
  expect(parseSince('999999w', now)).toBe('1970-01-01T00:00:00.000Z');
  expect(parseSince('999999d', now)).toBe('1970-01-01T00:00:00.000Z');
  expect(parseSince('2d', now)).toBe('2026-11-29T00:00:00.000Z');
});

describe('the leak mail map is an LRU with a hard cap', () => {
  test('past the cap the least recently mailed key is forgotten (and mailed again on its next report)', async () => {
    const sqlite = eng.list[0];
    if (!sqlite) throw new Error('setup');
    const s = await sqlite.startServer();
    try {
      const sent: MailMessage[] = [];
      const leaks = new LeakService(
        s.app.breeze,
        {
          send: async (m) => {
            sent.push(m);
          },
        },
        2,
      );
      const email = `lru-${uniq()}@example.com`;
      const [a, b, c] = [await s.seedKey({ email }), await s.seedKey({ email }), await s.seedKey({ email })];
      const orgId = (await s.store.orgs.personalOf(a!.userId))?.id as string;
      // notify: the keys stay live, so every report is of a live key
      await s.store.orgs.setLeakPolicy(orgId, 'notify');
      const report = (k: { apiKey: string }) => leaks.report({ key: k.apiKey, source: null }, SYSTEM_META);
      await report(a!);
      await report(b!);
      await report(a!); // within the window: no second mail
      expect(sent).toHaveLength(2);
      await report(c!); // the cap (2) is passed: a, the oldest, is forgotten
      expect(sent).toHaveLength(3);
      await report(b!); // still remembered
      expect(sent).toHaveLength(3);
      await report(a!);
      expect(sent).toHaveLength(4);
    } finally {
      await s.close();
    }
  });
});

for (const e of eng.list) {
  describe.skipIf(e.skip)(`security review fixes (${e.name})`, () => {
    let s: TestServer;
    let base: string;
    let issuer: TestIssuer;
    let rx: Receiver;
    const streams: SseStream[] = [];
    const lines: string[] = [];

    beforeAll(async () => {
      issuer = await startTestIssuer();
      rx = await startReceiver();
      s = await e.startServer({
        config: {
          allowHttpIssuers: true,
          allowPrivateWebhooks: true,
          webhooks: { pollMs: 50, retryBaseMs: 150, timeoutMs: 2000, expiryScanMs: 0 },
          rateLimitPerKey: 0,
          keyExpiryPollMs: 100,
        },
        logger: { ...loggerOptions('info'), stream: { write: (l: string) => void lines.push(l) } },
      });
      base = await s.app.listen({ host: '127.0.0.1', port: 0 });
    });
    afterAll(async () => {
      for (const st of streams) st.close();
      await s?.close();
      await issuer?.close();
      await rx?.close();
    });

    async function call(key: string | null, method: string, url: string, payload?: object) {
      const res = await s.app.inject({
        method: method as 'GET',
        url,
        headers: key ? { 'xi-api-key': key } : {},
        ...(payload ? { payload } : {}),
      });
      // biome-ignore lint/suspicious/noExplicitAny: test reads nested answer fields
      return { status: res.statusCode, body: (res.body ? res.json() : {}) as Record<string, any> };
    }

    /** An owner with an admin key and a verifier key in their personal organization. */
    async function owner() {
      const email = `owner-${uniq()}@example.com`;
      const admin = await s.seedKey({ email, scopes: ['read', 'write', 'admin'] });
      const verifier = await s.seedKey({ email, scopes: ['read', 'verify'], name: 'verifier' });
      const me = await call(admin.apiKey, 'GET', '/v1/me');
      return { email, admin, verifier, orgId: me.body.org.id as string };
    }

    async function stream(key: string) {
      const st = await openSse(`${base}/v1/keys/events`, { 'xi-api-key': key });
      streams.push(st);
      if (st.status === 200) await st.waitFor((ev) => ev.comment === 'connected');
      return st;
    }

    const auditOf = async (key: string, orgId: string, action: string) =>
      (await call(key, 'GET', `/v1/audit-events?org_id=${orgId}&action=${action}`)).body.data as Json[];

    test('a trust value with more than 4 wildcards is 400; runs of * are collapsed', async () => {
      const o = await owner();
      const url = `/v1/orgs/${o.orgId}/oidc-trusts`;
      const tooMany = await call(o.admin.apiKey, 'POST', url, {
        issuer: 'https://token.actions.githubusercontent.com',
        claims: { repository: 'acme/api', ref: 'a*b*c*d*e*f' },
      });
      expect(tooMany.status).toBe(400);
      expect(tooMany.body.error.code).toBe('VALIDATION_FAILED');
      expect(tooMany.body.error.message).toMatch(/at most 4 "\*" wildcards; ref has more/);
      const collapsed = await call(o.admin.apiKey, 'POST', url, {
        issuer: 'https://token.actions.githubusercontent.com',
        claims: { repository: 'acme/api', ref: 'refs/**********/*****' },
      });
      expect(collapsed.status).toBe(201);
      expect(collapsed.body.claims).toEqual({ repository: 'acme/api', ref: 'refs/*/*' });
    });

    test('a leak report that disables a key sends key.revoked to verifiers within a second', async () => {
      const o = await owner();
      const target = await s.seedKey({ email: o.email, name: 'leaked' });
      const st = await stream(o.verifier.apiKey);
      const t0 = Date.now();
      const res = await s.app.inject({
        method: 'POST',
        url: '/v1/keys/leaks',
        payload: { key: target.apiKey },
        remoteAddress: '10.77.0.1',
      });
      expect(res.statusCode).toBe(202);
      await st.waitFor(
        (ev) => ev.event === 'key.revoked' && ev.data === JSON.stringify({ key_id: target.keyId }),
        1000,
      );
      expect(Date.now() - t0).toBeLessThan(1000);
    });

    test('a stream ends when its own key is revoked (disabled; creator removed), and a reconnect is 401', async () => {
      const o = await owner();
      const st = await stream(o.verifier.apiKey);
      expect((await call(o.admin.apiKey, 'POST', `/v1/api-keys/${o.verifier.keyId}/disable`)).status).toBe(
        200,
      );
      await st.waitFor((ev) => ev.data === JSON.stringify({ key_id: o.verifier.keyId }), 2000);
      const ended = await Promise.race([
        st.ended.then(() => true),
        new Promise((r) => setTimeout(() => r(false), 2000)),
      ]);
      expect(ended).toBe(true);
      const again = await stream(o.verifier.apiKey);
      expect(again.status).toBe(401);

      // a team member's verifier stream ends when the member is removed
      const { org, project } = await s.store.transaction((tx) =>
        tx.orgs.create(`Org ${uniq()}`, o.admin.userId),
      );
      const member = await s.store.users.ensure(`m-${uniq()}@example.com`);
      await s.store.orgs.addMember(org.id, member.id, 'admin');
      const mv = await s.app.breeze.keys.mint({
        userId: member.id,
        projectId: project.id,
        name: 'member verifier',
        scopes: ['read', 'verify'],
        expiresAt: null,
        createdVia: 'api',
      });
      const ms = await stream(mv.apiKey);
      expect(ms.status).toBe(200);
      expect((await call(o.admin.apiKey, 'DELETE', `/v1/orgs/${org.id}/members/${member.id}`)).status).toBe(
        204,
      );
      await ms.waitFor((ev) => ev.data === JSON.stringify({ key_id: mv.row.id }), 2000);
      expect(
        await Promise.race([ms.ended.then(() => true), new Promise((r) => setTimeout(() => r(false), 2000))]),
      ).toBe(true);
      // a stream whose key is not the revoked one stays open
      const other = await s.seedKey({ email: o.email, scopes: ['read', 'verify'] });
      const still = await stream(other.apiKey);
      const k = await s.seedKey({ email: o.email, name: 'gone' });
      expect((await call(o.admin.apiKey, 'DELETE', `/v1/api-keys/${k.keyId}`)).status).toBe(204);
      await still.waitFor((ev) => ev.data === JSON.stringify({ key_id: k.keyId }), 2000);
      await new Promise((r) => setTimeout(r, 200));
      expect(still.events.at(-1)?.event).toBe('key.revoked');
      expect(
        await Promise.race([
          still.ended.then(() => true),
          new Promise((r) => setTimeout(() => r(false), 100)),
        ]),
      ).toBe(false);
    });

    test('an unverified iss with NUL or control characters, or too long, is a plain 401 (no 500)', async () => {
      const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
      const token = (iss: string) =>
        `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ iss, aud: 'x', exp: 9_999_999_999, jti: 'j' })}.c2ln`;
      for (const iss of [
        'https://issuer.example.com\u0000/x',
        '\u0000',
        'https://issuer.example.com/\u0007',
        'https://issuer.example.com/\u0085',
        `https://issuer.example.com/${'a'.repeat(600)}`,
        'ftp://issuer.example.com',
      ]) {
        const res = await call(null, 'POST', '/v1/oidc/exchange', { token: token(iss) });
        expect(res.status, JSON.stringify(iss)).toBe(401);
        expect(res.body.error.code).toBe('AUTH_REQUIRED');
      }
      const reasons = lines
        .map((l) => JSON.parse(l) as { msg: string; reason?: string })
        .filter((l) => l.msg === 'oidc exchange refused')
        .map((l) => l.reason);
      expect(reasons).toContain('issuer with control characters');
      expect(reasons).toContain('issuer too long');
    });

    test('since=999999w lists from the beginning; an unknown unit is 400', async () => {
      const o = await owner();
      const far = await call(o.admin.apiKey, 'GET', `/v1/audit-events?org_id=${o.orgId}&since=999999w`);
      expect(far.status, JSON.stringify(far.body)).toBe(200);
      expect(Array.isArray(far.body.data)).toBe(true);
      const bad = await call(o.admin.apiKey, 'GET', `/v1/audit-events?org_id=${o.orgId}&since=9y`);
      expect(bad.status).toBe(400);
    });

    test('deleting an OIDC trust and changing the leak policy are audited (and webhooks can subscribe)', async () => {
      const o = await owner();
      const hook = await call(o.admin.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
        url: `${rx.url}/audit`,
        events: ['oidc_trust.deleted', 'org.updated'],
      });
      expect(hook.status, JSON.stringify(hook.body)).toBe(201);
      const trust = await call(o.admin.apiKey, 'POST', `/v1/orgs/${o.orgId}/oidc-trusts`, {
        issuer: issuer.url,
        claims: { repository: 'acme/api' },
      });
      expect(trust.status).toBe(201);
      expect((await call(o.admin.apiKey, 'DELETE', `/v1/oidc-trusts/${trust.body.id}`)).status).toBe(204);
      const deleted = await auditOf(o.admin.apiKey, o.orgId, 'oidc_trust.deleted');
      expect(deleted).toHaveLength(1);
      expect(deleted[0]).toMatchObject({
        target: { type: 'oidc_trust', id: trust.body.id },
        actor: { type: 'key', key_id: o.admin.keyId },
        details: { issuer: issuer.url, claims: { repository: 'acme/api' } },
      });

      const patch = (leak_policy: string) =>
        call(o.admin.apiKey, 'PATCH', `/v1/orgs/${o.orgId}`, { leak_policy });
      expect((await patch('notify')).body.leak_policy).toBe('notify');
      expect((await patch('notify')).status).toBe(200); // no change: no event
      expect((await patch('disable')).body.leak_policy).toBe('disable');
      const updated = await auditOf(o.admin.apiKey, o.orgId, 'org.updated');
      expect(updated.map((ev) => ev.details)).toEqual([
        { leak_policy: { from: 'notify', to: 'disable' } },
        { leak_policy: { from: 'disable', to: 'notify' } },
      ]);
      expect(updated[0]).toMatchObject({ target: { type: 'org', id: o.orgId } });

      // both reached the webhook
      const end = Date.now() + 5000;
      const seen = () =>
        rx.received
          .map((r) => JSON.parse(r.raw) as { type: string; data: { org_id: string } })
          .filter((b) => b.data.org_id === o.orgId)
          .map((b) => b.type);
      while (seen().length < 3 && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
      expect(seen().sort()).toEqual(['oidc_trust.deleted', 'org.updated', 'org.updated']);
    });

    test('deleting a project deletes its OIDC trusts, each recorded as oidc_trust.deleted', async () => {
      const o = await owner();
      const project = await call(o.admin.apiKey, 'POST', `/v1/orgs/${o.orgId}/projects`, {
        name: `ci-${uniq()}`,
      });
      expect(project.status, JSON.stringify(project.body)).toBe(201);
      const trusts: Json[] = [];
      for (const repository of ['acme/api', 'acme/web']) {
        const t = await call(o.admin.apiKey, 'POST', `/v1/orgs/${o.orgId}/oidc-trusts`, {
          issuer: issuer.url,
          claims: { repository },
          project_id: project.body.id,
        });
        expect(t.status, JSON.stringify(t.body)).toBe(201);
        trusts.push(t.body);
      }
      expect((await call(o.admin.apiKey, 'DELETE', `/v1/projects/${project.body.id}`)).status).toBe(204);
      // the trusts are gone with the project
      for (const t of trusts)
        expect((await call(o.admin.apiKey, 'DELETE', `/v1/oidc-trusts/${t.id}`)).status).toBe(404);
      const deleted = await auditOf(o.admin.apiKey, o.orgId, 'oidc_trust.deleted');
      expect(deleted.map((ev) => (ev.target as Json).id).sort()).toEqual(trusts.map((t) => t.id).sort());
      for (const ev of deleted) {
        expect(ev).toMatchObject({
          project_id: project.body.id,
          actor: { type: 'key', key_id: o.admin.keyId },
          details: { issuer: issuer.url },
        });
      }
      expect(await auditOf(o.admin.apiKey, o.orgId, 'project.deleted')).toHaveLength(1);
    });

    // PostgreSQL only (defined there, not skipped here): SQLite's write transactions exclude each other
    if (e.name === 'postgres')
      test('PostgreSQL: a trust added while its project is being deleted is recorded too (the project is locked first)', async () => {
        const o = await owner();
        const project = await call(o.admin.apiKey, 'POST', `/v1/orgs/${o.orgId}/projects`, {
          name: `race-${uniq()}`,
        });
        const first = await call(o.admin.apiKey, 'POST', `/v1/orgs/${o.orgId}/oidc-trusts`, {
          issuer: issuer.url,
          claims: { repository: 'acme/first' },
          project_id: project.body.id,
        });
        expect(first.status, JSON.stringify(first.body)).toBe(201);
        const row = await s.store.oidc.trust(first.body.id);
        const lateId = `oidc_${'Z'.repeat(20)}${uniq().toUpperCase().slice(0, 6)}`;
        // another transaction adds a trust to the project and stays open while the delete starts
        let commit!: () => void;
        const gate = new Promise<void>((r) => {
          commit = r;
        });
        let inserted!: () => void;
        const insertedNow = new Promise<void>((r) => {
          inserted = r;
        });
        const adding = s.store.db.transaction().execute(async (trx) => {
          await trx
            .insertInto('oidc_trusts')
            .values({ ...row!, id: lateId, claims: JSON.stringify({ repository: 'acme/late' }) })
            .execute();
          inserted();
          await gate;
        });
        await insertedNow;
        const deleting = call(o.admin.apiKey, 'DELETE', `/v1/projects/${project.body.id}`);
        await new Promise((r) => setTimeout(r, 200));
        commit();
        await adding;
        expect((await deleting).status).toBe(204);
        const deleted = await auditOf(o.admin.apiKey, o.orgId, 'oidc_trust.deleted');
        expect(deleted.map((ev) => (ev.target as Json).id).sort()).toEqual([first.body.id, lateId].sort());
      });

    test("a webhook ping's stored body has the URL without its query", async () => {
      const o = await owner();
      const hook = await call(o.admin.apiKey, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
        url: `${rx.url}/ping?token=s3cret-${e.name}`,
        events: ['key.deleted'],
      });
      expect(hook.status).toBe(201);
      const ping = await call(o.admin.apiKey, 'POST', `/v1/webhooks/${hook.body.id}/test`);
      expect(ping.status).toBe(202);
      const rows = await s.store.db
        .selectFrom('webhook_deliveries')
        .select(['body'])
        .where('webhook_id', '=', hook.body.id)
        .execute();
      expect(rows).toHaveLength(1);
      expect(rows[0]?.body).not.toContain('s3cret');
      expect(JSON.parse(rows[0]?.body as string).data.details.url).toBe(`${rx.url}/ping`);
    });
  });
}

describe('issuer fetches: the private-address guard', () => {
  let tcp: TcpServer;
  let port: number;
  let connections = 0;
  beforeAll(async () => {
    tcp = createTcpServer((sock) => {
      connections++;
      sock.destroy();
    });
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    port = (tcp.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => tcp.close(() => r())));

  test('an https issuer on a loopback address (by name or literal) is refused without a connection', async () => {
    const sqlite = eng.list[0];
    if (!sqlite) throw new Error('setup');
    const real = await startTestIssuer();
    const lines: string[] = [];
    const s = await sqlite.startServer({
      config: {
        rateLimitPerKey: 0,
        oidcJwksCooldownMs: 0,
        oidcResolve: async (host) => {
          if (host === 'issuer.internal.test') return [{ address: '127.0.0.1', family: 4 }];
          throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
        },
      },
      logger: { ...loggerOptions('info'), stream: { write: (l: string) => void lines.push(l) } },
    });
    try {
      const k = await s.seedKey({ email: 'guard@example.com' });
      const orgId = (
        await s.app.inject({ method: 'GET', url: '/v1/me', headers: { 'xi-api-key': k.apiKey } })
      ).json().org.id;
      const reasons: string[] = [];
      for (const iss of [
        `https://issuer.internal.test:${port}`,
        `https://127.0.0.1:${port}`,
        `https://[::ffff:127.0.0.1]:${port}`,
      ]) {
        const created = await s.app.inject({
          method: 'POST',
          url: `/v1/orgs/${orgId}/oidc-trusts`,
          headers: { 'xi-api-key': k.apiKey },
          payload: { issuer: iss, audience: 'a', claims: { repository: 'acme/api' } },
        });
        expect(created.statusCode, iss).toBe(201);
        const token = await real.sign({ iss, aud: 'a', repository: 'acme/api' });
        const res = await s.app.inject({ method: 'POST', url: '/v1/oidc/exchange', payload: { token } });
        expect(res.statusCode, iss).toBe(401);
        reasons.push(
          lines
            .map((l) => JSON.parse(l))
            .filter((l) => l.msg === 'oidc exchange refused')
            .at(-1).reason,
        );
      }
      expect(reasons).toEqual(['issuer address refused', 'issuer address refused', 'issuer address refused']);
      expect(connections).toBe(0);
    } finally {
      await s.close();
      await real.close();
    }
  });
});
