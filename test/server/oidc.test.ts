import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loggerOptions } from '../../src/server/logging.js';
import { EXCHANGES_PER_IP } from '../../src/server/routes/oidc.js';
import { claimMatches, newOidcTrustId } from '../../src/server/services/oidc.js';
import { testEngines } from '../helpers/engines.js';
import { startTestIssuer, type TestIssuer } from '../helpers/oidc-issuer.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * PLATFORM.md "CI identity" over HTTP, on SQLite and PostgreSQL: trust policies (validation, role
 * checks) and POST /v1/oidc/exchange against a local issuer (discovery + JWKS on 127.0.0.1, keys
 * made with jose): every check refuses with the same 401 and the log names the check.
 */

const eng = testEngines();
afterAll(() => eng.stop());

test('claim globs: * is any run of characters, everything else is literal', () => {
  expect(claimMatches('acme/api', 'acme/api')).toBe(true);
  expect(claimMatches('acme/api', 'acme/api2')).toBe(false);
  expect(claimMatches('refs/heads/*', 'refs/heads/release/1.2')).toBe(true);
  expect(claimMatches('refs/heads/*', 'refs/tags/v1')).toBe(false);
  expect(claimMatches('a.c', 'abc')).toBe(false);
  expect(claimMatches('repo:acme/*:ref:refs/heads/main', 'repo:acme/api:ref:refs/heads/main')).toBe(true);
  expect(claimMatches('true', true)).toBe(true);
  expect(claimMatches('*', ['x'])).toBe(false);
});

for (const e of eng.list) {
  describe.skipIf(e.skip)(`OIDC on ${e.name}`, () => {
    let s: TestServer;
    let issuer: TestIssuer;
    const lines: string[] = [];
    let offsetMs = 0;
    let owner: { apiKey: string; userId: string; orgId: string; projectId: string };
    const aud = 'https://breeze.example.com';

    const call = async (method: string, url: string, payload?: object, key?: string) => {
      const res = await s.app.inject({
        method: method as 'GET',
        url,
        headers: key ? { 'xi-api-key': key } : {},
        ...(payload ? { payload } : {}),
      });
      // biome-ignore lint/suspicious/noExplicitAny: test reads nested answer fields
      return { status: res.statusCode, body: res.body ? (res.json() as Record<string, any>) : {} };
    };
    const exchange = (token: string, extra: object = {}) =>
      call('POST', '/v1/oidc/exchange', { token, ...extra });
    const logReasons = () =>
      lines
        .map((l) => JSON.parse(l) as { msg: string; reason?: string })
        .filter((l) => l.msg === 'oidc exchange refused')
        .map((l) => l.reason);

    async function trust(body: object, key = owner.apiKey) {
      return call('POST', `/v1/orgs/${owner.orgId}/oidc-trusts`, body, key);
    }

    beforeAll(async () => {
      issuer = await startTestIssuer();
      s = await e.startServer({
        config: { allowHttpIssuers: true, rateLimitPerKey: 0, oidcJwksCooldownMs: 0 },
        clock: () => new Date(Date.now() + offsetMs),
        logger: { ...loggerOptions('info'), stream: { write: (l: string) => void lines.push(l) } },
      });
      const seeded = await s.seedKey({ email: `owner-${e.name}@example.com` });
      const me = await call('GET', '/v1/me', undefined, seeded.apiKey);
      const projects = await call('GET', `/v1/orgs/${me.body.org.id}/projects`, undefined, seeded.apiKey);
      owner = { ...seeded, orgId: me.body.org.id, projectId: projects.body.data[0].id };
    });
    afterAll(async () => {
      await s?.close();
      await issuer?.close();
    });

    test('an owner creates, lists and deletes trusts; the answer has the trust', async () => {
      const created = await trust({
        issuer: issuer.url,
        audience: aud,
        claims: { repository: 'acme/api', ref: 'refs/heads/*' },
        scopes: ['read', 'write'],
        ttl_s: 600,
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect(created.body).toMatchObject({
        org_id: owner.orgId,
        project_id: owner.projectId,
        issuer: issuer.url,
        audience: aud,
        claims: { repository: 'acme/api', ref: 'refs/heads/*' },
        scopes: ['read', 'write'],
        ttl_s: 600,
        created_by: owner.userId,
      });
      const list = await call('GET', `/v1/orgs/${owner.orgId}/oidc-trusts`, undefined, owner.apiKey);
      expect(list.body.data.map((t: { id: string }) => t.id)).toContain(created.body.id);
      // someone of another organization neither sees nor deletes it
      const outsider = await s.seedKey({ email: `outsider-${e.name}@example.com` });
      const theirs = await call('DELETE', `/v1/oidc-trusts/${created.body.id}`, undefined, outsider.apiKey);
      expect(theirs.status).toBe(404);
      expect(theirs.body.error.message).toBe('No such OIDC trust.');
      expect(
        (await call('GET', `/v1/orgs/${owner.orgId}/oidc-trusts`, undefined, outsider.apiKey)).status,
      ).toBe(404);
      expect(
        (await call('DELETE', `/v1/oidc-trusts/${created.body.id}`, undefined, owner.apiKey)).status,
      ).toBe(204);
      expect(
        (await call('DELETE', `/v1/oidc-trusts/${created.body.id}`, undefined, owner.apiKey)).status,
      ).toBe(404);
    });

    test('bad trusts are 400 in the error shape; a project of another org 404; wider scopes 403', async () => {
      const good = { issuer: issuer.url, audience: aud, claims: { repository: 'acme/api' } };
      const bad: object[] = [
        { ...good, ttl_s: 3601 },
        { ...good, ttl_s: 0 },
        { ...good, claims: {} },
        { ...good, claims: { repository: '*' } },
        { ...good, claims: { aud: 'x', repository: 'acme/api' } },
        { ...good, claims: { 'bad name': 'x' } },
        { ...good, claims: { repository: 'acme/\u0000api' } },
        { ...good, claims: { repository: 42 } },
        { ...good, issuer: 'ftp://issuer.example.com' },
        { ...good, issuer: 'not a url' },
        { ...good, issuer: 'https://user:pw@issuer.example.com' },
        { ...good, issuer: 'https://issuer.example.com/?tenant=1' },
        { ...good, issuer: 'https://issuer.example.com/#x' },
        { ...good, scopes: ['root'] },
        { audience: aud, claims: { repository: 'acme/api' } },
      ];
      for (const body of bad) {
        const res = await trust(body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(res.body.error.code).toBe('VALIDATION_FAILED');
      }
      const stranger = await s.seedKey({ email: `stranger-${e.name}@example.com` });
      const other = await call('GET', '/v1/me', undefined, stranger.apiKey);
      const otherProjects = await call(
        'GET',
        `/v1/orgs/${other.body.org.id}/projects`,
        undefined,
        stranger.apiKey,
      );
      expect((await trust({ ...good, project_id: otherProjects.body.data[0].id })).status).toBe(404);
      // someone else's organization: 404, never a hint it exists
      expect((await trust(good, stranger.apiKey)).status).toBe(404);
      const narrow = await s.seedKey({ email: `owner-${e.name}@example.com`, scopes: ['read', 'admin'] });
      const wide = await trust({ ...good, scopes: ['read', 'write'] }, narrow.apiKey);
      expect(wide.status).toBe(403);
    });

    test('members and viewers cannot list, create or delete trusts (403)', async () => {
      const created = await trust({
        issuer: issuer.url,
        audience: aud,
        claims: { repository: 'acme/roles' },
      });
      for (const role of ['member', 'viewer'] as const) {
        const m = await s.seedKey({ email: `${role}-${e.name}@example.com` });
        await s.store.orgs.addMember(owner.orgId, m.userId, role);
        expect((await call('GET', `/v1/orgs/${owner.orgId}/oidc-trusts`, undefined, m.apiKey)).status).toBe(
          403,
        );
        expect(
          (await trust({ issuer: issuer.url, audience: aud, claims: { repository: 'x/y' } }, m.apiKey))
            .status,
        ).toBe(403);
        expect((await call('DELETE', `/v1/oidc-trusts/${created.body.id}`, undefined, m.apiKey)).status).toBe(
          403,
        );
      }
      const admin = await s.seedKey({ email: `admin-${e.name}@example.com` });
      await s.store.orgs.addMember(owner.orgId, admin.userId, 'admin');
      expect((await call('GET', `/v1/orgs/${owner.orgId}/oidc-trusts`, undefined, admin.apiKey)).status).toBe(
        200,
      );
      expect(
        (await call('DELETE', `/v1/oidc-trusts/${created.body.id}`, undefined, admin.apiKey)).status,
      ).toBe(204);
    });

    describe('exchange', () => {
      let trustId: string;
      beforeAll(async () => {
        const created = await trust({
          issuer: issuer.url,
          audience: aud,
          claims: { repository: 'acme/api', ref: 'refs/heads/*' },
          scopes: ['read', 'write'],
          ttl_s: 120,
        });
        trustId = created.body.id;
      });
      const claims = {
        aud,
        repository: 'acme/api',
        ref: 'refs/heads/main',
        sub: 'repo:acme/api:ref:refs/heads/main',
      };

      test('a valid token gets a short-lived key of the trust that works, once; a replay is 401', async () => {
        const token = await issuer.sign(claims);
        const before = Date.now();
        const res = await exchange(token);
        expect(res.status, JSON.stringify(res.body)).toBe(200);
        expect(res.body.api_key).toMatch(/^brz_/);
        expect(res.body.trust_id).toBe(trustId);
        expect(res.body.key).toMatchObject({
          created_via: 'oidc',
          org_id: owner.orgId,
          project_id: owner.projectId,
          created_by: owner.userId,
          scopes: ['read', 'write'],
          name: 'oidc: repo:acme/api:ref:refs/heads/main',
        });
        const expires = Date.parse(res.body.key.expires_at);
        expect(expires - before).toBeGreaterThanOrEqual(119_000);
        expect(expires - before).toBeLessThanOrEqual(122_000);
        // PLATFORM.md: expires_at is now + ttl_s, counted from the key's own created_at exactly
        expect(expires - Date.parse(res.body.key.created_at)).toBe(120_000);
        const me = await call('GET', '/v1/me', undefined, res.body.api_key);
        expect(me.status).toBe(200);
        expect(me.body.user.id).toBe(owner.userId);
        expect(me.body.project.id).toBe(owner.projectId);
        // single use
        const again = await exchange(token);
        expect(again.status).toBe(401);
        expect(again.body.error.code).toBe('AUTH_REQUIRED');
        expect(logReasons().at(-1)).toBe('token already exchanged (jti replay)');
        // the token never reaches the log
        expect(lines.join('\n')).not.toContain(token.split('.')[2]);
        expect(lines.join('\n')).not.toContain(res.body.api_key);
        // the audit log has the trust's creation and the exchange (with the CI identity, no secret)
        const events = await call(
          'GET',
          `/v1/audit-events?org_id=${owner.orgId}&action=oidc.exchanged`,
          undefined,
          owner.apiKey,
        );
        expect(events.status).toBe(200);
        const ev = events.body.data.find(
          (x: { details: { key_id?: string } }) => x.details.key_id === res.body.key.key_id,
        );
        expect(ev).toMatchObject({
          action: 'oidc.exchanged',
          target: { type: 'oidc_trust', id: trustId },
          details: {
            issuer: issuer.url,
            subject: claims.sub,
            claims: { repository: 'acme/api', ref: 'refs/heads/main' },
          },
        });
        expect(JSON.stringify(events.body)).not.toContain(res.body.api_key);
        expect(JSON.stringify(events.body)).not.toContain(token.split('.')[2]);
        const created = await call(
          'GET',
          `/v1/audit-events?org_id=${owner.orgId}&action=oidc_trust.created`,
          undefined,
          owner.apiKey,
        );
        expect(created.body.data.map((x: { target: { id: string } }) => x.target.id)).toContain(trustId);
      });

      test('the key is refused after its TTL', async () => {
        const res = await exchange(await issuer.sign(claims));
        expect(res.status).toBe(200);
        expect((await call('GET', '/v1/me', undefined, res.body.api_key)).status).toBe(200);
        offsetMs = 121_000;
        try {
          expect((await call('GET', '/v1/me', undefined, res.body.api_key)).status).toBe(401);
        } finally {
          offsetMs = 0;
        }
      });

      test('every failed check is the same 401; the log says which', async () => {
        const cases: [string, Promise<string>, string][] = [
          [
            'wrong aud',
            issuer.sign({ ...claims, aud: 'https://evil.example.com' }),
            'no trust matches the audience and claims',
          ],
          [
            'wrong claim',
            issuer.sign({ ...claims, repository: 'acme/other' }),
            'no trust matches the audience and claims',
          ],
          [
            'claim missing',
            issuer.sign({ aud, ref: 'refs/heads/main' }),
            'no trust matches the audience and claims',
          ],
          ['expired', issuer.sign(claims, { expiresIn: -120 }), 'token expired'],
          [
            'not yet valid',
            issuer.sign(claims, { notBefore: 300, expiresIn: 600 }),
            'token not yet valid (nbf)',
          ],
          [
            'unknown kid',
            issuer.sign(claims, { key: 'stranger', kid: 'stranger' }),
            'unknown kid (not in the issuer JWKS)',
          ],
          [
            'known kid, wrong key',
            issuer.sign(claims, { key: 'stranger', kid: issuer.currentKid() }),
            'bad signature',
          ],
          ['no jti', issuer.sign({ ...claims, jti: undefined } as never), 'claim jti invalid: missing'],
          [
            'issued in an hour',
            issuer.sign(claims, { issuedAt: 3600, expiresIn: 7200 }),
            'token issued in the future (iat)',
          ],
          [
            'lives a week',
            issuer.sign(claims, { expiresIn: 7 * 86400 }),
            'token expires too far in the future',
          ],
          [
            'other issuer',
            issuer.sign({ ...claims, iss: 'https://issuer.example.org' }),
            'no trust for this issuer',
          ],
        ];
        const messages = new Set<string>();
        for (const [name, tokenP, reason] of cases) {
          const res = await exchange(await tokenP);
          expect(res.status, name).toBe(401);
          expect(res.body.error.code, name).toBe('AUTH_REQUIRED');
          messages.add(res.body.error.message);
          expect(logReasons().at(-1), name).toBe(reason);
        }
        expect(messages.size).toBe(1);
        // alg none and garbage: 401 (a token that is not even a JWT too), a missing token 400, never 5xx
        const [h, p] = (await issuer.sign(claims)).split('.');
        const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${p}.`;
        expect((await exchange(none)).status).toBe(401);
        expect((await exchange(`${h}.${p}.AAAA`)).status).toBe(401);
        expect((await exchange('a.b.c')).status).toBe(401);
        expect((await exchange('nope')).status).toBe(401);
        expect((await call('POST', '/v1/oidc/exchange', {})).status).toBe(400);
        // an unknown field is ignored (API.md conventions): the token decides
        expect((await call('POST', '/v1/oidc/exchange', { token: 'a.b.c', extra: 1 })).status).toBe(401);
      });

      test('after a key rotation the new key is accepted (the JWKS is fetched again)', async () => {
        expect((await exchange(await issuer.sign(claims))).status).toBe(200);
        const fetchesBefore = issuer.hits['/keys'] ?? 0;
        await issuer.rotate({ dropOld: true });
        const res = await exchange(await issuer.sign(claims));
        expect(res.status, JSON.stringify(res.body)).toBe(200);
        expect(issuer.hits['/keys']).toBe(fetchesBefore + 1);
      });

      test('a trust whose creator left mints nothing; org_id picks among organizations', async () => {
        const other = await s.seedKey({ email: `other-org-${e.name}@example.com` });
        const me = await call('GET', '/v1/me', undefined, other.apiKey);
        const otherOrg = me.body.org.id as string;
        const t2 = await call(
          'POST',
          `/v1/orgs/${otherOrg}/oidc-trusts`,
          { issuer: issuer.url, audience: aud, claims: { repository: 'acme/api' } },
          other.apiKey,
        );
        expect(t2.status).toBe(201);
        // the token matches trusts of two organizations: it must say which
        expect((await exchange(await issuer.sign(claims))).status).toBe(401);
        expect(logReasons().at(-1)).toMatch(
          /several organizations; the caller must pass org_id \(breeze login --oidc --org <org_id>/,
        );
        const picked = await exchange(await issuer.sign(claims), { org_id: otherOrg });
        expect(picked.status).toBe(200);
        expect(picked.body.key.org_id).toBe(otherOrg);
        expect(picked.body.key.scopes).toEqual(['read']);
        expect((await exchange(await issuer.sign(claims), { org_id: owner.orgId })).status).toBe(200);
        // the creator leaves that organization (here: the trust was made by a member who is removed)
        const leaver = await s.seedKey({ email: `leaver-${e.name}@example.com` });
        await s.store.orgs.addMember(otherOrg, leaver.userId, 'admin');
        const t3 = await call(
          'POST',
          `/v1/orgs/${otherOrg}/oidc-trusts`,
          { issuer: issuer.url, audience: aud, claims: { repository: 'acme/leaver' } },
          leaver.apiKey,
        );
        expect(t3.status).toBe(201);
        await s.store.orgs.removeMember(otherOrg, leaver.userId);
        expect((await exchange(await issuer.sign({ ...claims, repository: 'acme/leaver' }))).status).toBe(
          401,
        );
        expect(logReasons().at(-1)).toBe("the trust's creator is no longer a member");
      });

      test('a trust deleted while an exchange waits for the issuer mints nothing', async () => {
        // an issuer whose discovery answers only when released: the exchange has read the trust by then
        let release: () => void = () => {};
        let asked: () => void = () => {};
        const discoveryAsked = new Promise<void>((r) => {
          asked = r;
        });
        const gated = createServer((_req, res) => {
          asked();
          release = () => {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ issuer: gatedUrl, jwks_uri: `${issuer.url}/keys` }));
          };
        });
        await new Promise<void>((r) => gated.listen(0, '127.0.0.1', r));
        const gatedUrl = `http://localhost:${(gated.address() as AddressInfo).port}`;
        try {
          const created = await trust({
            issuer: gatedUrl,
            audience: aud,
            claims: { repository: 'acme/gated' },
          });
          expect(created.status).toBe(201);
          const pending = exchange(await issuer.sign({ iss: gatedUrl, aud, repository: 'acme/gated' }));
          await discoveryAsked;
          const deleted = await call('DELETE', `/v1/oidc-trusts/${created.body.id}`, undefined, owner.apiKey);
          expect(deleted.status).toBe(204);
          release();
          const res = await pending;
          expect(res.status, JSON.stringify(res.body)).toBe(401);
          expect(res.body.error.code).toBe('AUTH_REQUIRED');
          expect(logReasons().at(-1)).toBe('the trust was deleted');
        } finally {
          gated.closeAllConnections();
          await new Promise<void>((r) => gated.close(() => r()));
        }
      });

      test('a trust written with a trailing slash matches the issuer without one', async () => {
        const t = await trust({
          issuer: `${issuer.url}/`,
          audience: aud,
          claims: { repository: 'acme/slash' },
        });
        expect(t.status).toBe(201);
        const res = await exchange(await issuer.sign({ aud, repository: 'acme/slash' }));
        expect(res.status, JSON.stringify(res.body)).toBe(200);
        expect(res.body.trust_id).toBe(t.body.id);
      });

      if (e.name === 'postgres')
        test("a token exchanged while the trust's project is being deleted is the same 401, not 404 or 500", async () => {
          const project = await call(
            'POST',
            `/v1/orgs/${owner.orgId}/projects`,
            { name: 'doomed' },
            owner.apiKey,
          );
          expect(project.status).toBe(201);
          const t = await trust({
            issuer: issuer.url,
            audience: aud,
            claims: { repository: 'acme/doomed' },
            project_id: project.body.id,
          });
          expect(t.status).toBe(201);
          // another instance deletes the project (and with it the trust): locked, not committed yet
          let release = () => {};
          let deleting = () => {};
          const held = new Promise<void>((r) => {
            release = r;
          });
          const underWay = new Promise<void>((r) => {
            deleting = r;
          });
          const deletion = s.store.db.transaction().execute(async (trx) => {
            await trx
              .selectFrom('projects')
              .select('id')
              .where('id', '=', project.body.id)
              .forUpdate()
              .execute();
            await trx.deleteFrom('projects').where('id', '=', project.body.id).execute();
            deleting();
            await held;
          });
          await underWay;
          const exchanging = exchange(await issuer.sign({ aud, repository: 'acme/doomed' }));
          await new Promise((r) => setTimeout(r, 300));
          release();
          await deletion;
          const res = await exchanging;
          expect(res.status, JSON.stringify(res.body)).toBe(401);
          expect(res.body.error.code).toBe('AUTH_REQUIRED');
          expect(logReasons().at(-1)).toBe("the trust's project was deleted");
        });

      test('the exchange is rate-limited per IP', async () => {
        let limited = 0;
        for (let i = 0; i < EXCHANGES_PER_IP.max + 5; i++) {
          const res = await s.app.inject({
            method: 'POST',
            url: '/v1/oidc/exchange',
            payload: { token: 'a.b.c' },
            remoteAddress: '198.51.100.7',
          });
          if (res.statusCode === 429) limited++;
        }
        expect(limited).toBeGreaterThanOrEqual(5);
      });
    });

    test('an http issuer is refused by a server without --allow-http-issuers: 400 for the trust, 401 for a token', async () => {
      const strict = await e.startServer({ config: { rateLimitPerKey: 0 } });
      try {
        const k = await strict.seedKey({ email: 'strict@example.com' });
        const me = await strict.app.inject({
          method: 'GET',
          url: '/v1/me',
          headers: { 'xi-api-key': k.apiKey },
        });
        const orgId = me.json().org.id;
        const created = await strict.app.inject({
          method: 'POST',
          url: `/v1/orgs/${orgId}/oidc-trusts`,
          headers: { 'xi-api-key': k.apiKey },
          payload: { issuer: issuer.url, audience: aud, claims: { repository: 'acme/api' } },
        });
        expect(created.statusCode).toBe(400);
        expect(created.json()).toMatchObject({ error: { code: 'VALIDATION_FAILED' } });
        expect(created.json().error.message).toContain('--allow-http-issuers');
        // a trust written by an instance that allowed http (same database) is still refused here
        const now = new Date().toISOString();
        await strict.store.oidc.insertTrust({
          id: newOidcTrustId(),
          org_id: orgId,
          project_id: me.json().project.id,
          issuer: issuer.url,
          audience: aud,
          claims: JSON.stringify({ repository: 'acme/api' }),
          scopes: 'read',
          ttl_s: 600,
          created_by: me.json().user.id,
          created_at: now,
        });
        const hits = issuer.hits['/.well-known/openid-configuration'] ?? 0;
        const res = await strict.app.inject({
          method: 'POST',
          url: '/v1/oidc/exchange',
          payload: { token: await issuer.sign({ aud, repository: 'acme/api' }) },
        });
        expect(res.statusCode).toBe(401);
        // refused before anything is fetched
        expect(issuer.hits['/.well-known/openid-configuration'] ?? 0).toBe(hits);
      } finally {
        await strict.close();
      }
    });
  });
}

test('a token stays single-use on an instance whose clock is behind the one that prunes', async () => {
  const real = await startTestIssuer();
  const ahead = await startTestServer({
    config: { allowHttpIssuers: true, rateLimitPerKey: 0 },
    clock: () => new Date(Date.now() + 120_000),
  });
  const behind = await startTestServer({
    store: ahead.app.breeze.store,
    config: { allowHttpIssuers: true, rateLimitPerKey: 0 },
  });
  try {
    const k = await ahead.seedKey({ email: 'skew@example.com' });
    const orgId = (
      await ahead.app.inject({ method: 'GET', url: '/v1/me', headers: { 'xi-api-key': k.apiKey } })
    ).json().org.id;
    const created = await ahead.app.inject({
      method: 'POST',
      url: `/v1/orgs/${orgId}/oidc-trusts`,
      headers: { 'xi-api-key': k.apiKey },
      payload: { issuer: real.url, audience: 'a', claims: { repository: 'acme/api' } },
    });
    expect(created.statusCode).toBe(201);
    const post = (s: TestServer, token: string) =>
      s.app.inject({ method: 'POST', url: '/v1/oidc/exchange', payload: { token } });
    const token = await real.sign({ aud: 'a', repository: 'acme/api' }, { expiresIn: 60 });
    expect((await post(behind, token)).statusCode).toBe(200);
    // the instance two minutes ahead exchanges another token, and forgets used tokens by its clock
    const other = await real.sign({ aud: 'a', repository: 'acme/api' }, { expiresIn: 600 });
    expect((await post(ahead, other)).statusCode).toBe(200);
    await new Promise((r) => setTimeout(r, 100));
    // still within its expiry for the instance behind: a replay there is refused all the same
    expect((await post(behind, token)).statusCode).toBe(401);
  } finally {
    await behind.close();
    await ahead.close();
    await real.close();
  }
});

describe('outbound fetches to issuers', () => {
  const sqlite = eng.list[0];
  test('an issuer that fails is not fetched again for every token (the cooldown holds for failures too)', async () => {
    if (!sqlite) throw new Error('setup');
    const real = await startTestIssuer();
    let discoveries = 0;
    // an issuer that is down (or a host that is no issuer at all: anyone can name one in a trust)
    const flaky = createServer((req, res) => {
      if (req.url === '/.well-known/openid-configuration') discoveries++;
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{}');
    });
    await new Promise<void>((r) => flaky.listen(0, '127.0.0.1', r));
    const flakyUrl = `http://localhost:${(flaky.address() as AddressInfo).port}`;
    // the default cooldown (30 s): what an attacker with random tokens faces
    const s = await sqlite.startServer({ config: { allowHttpIssuers: true, rateLimitPerKey: 0 } });
    try {
      const k = await s.seedKey({ email: 'flaky@example.com' });
      const orgId = (
        await s.app.inject({ method: 'GET', url: '/v1/me', headers: { 'xi-api-key': k.apiKey } })
      ).json().org.id;
      const created = await s.app.inject({
        method: 'POST',
        url: `/v1/orgs/${orgId}/oidc-trusts`,
        headers: { 'xi-api-key': k.apiKey },
        payload: { issuer: flakyUrl, audience: 'a', claims: { repository: 'acme/api' } },
      });
      expect(created.statusCode).toBe(201);
      for (let i = 0; i < 10; i++) {
        const token = await real.sign({ iss: flakyUrl, aud: 'a', repository: 'acme/api' });
        const res = await s.app.inject({ method: 'POST', url: '/v1/oidc/exchange', payload: { token } });
        expect(res.statusCode).toBe(401);
      }
      expect(discoveries).toBe(1);
    } finally {
      await s.close();
      await real.close();
      await new Promise<void>((r) => flaky.close(() => r()));
    }
  });

  test('a redirect to another host, an oversized JWKS and a wrong discovery issuer are refused', async () => {
    if (!sqlite) throw new Error('setup');
    const real = await startTestIssuer();
    let mode: 'redirect' | 'huge' | 'wrong-issuer' = 'redirect';
    const evil = createServer((req, res) => {
      if (req.url === '/.well-known/openid-configuration') {
        if (mode === 'redirect') {
          res.writeHead(302, { location: `${real.url}/.well-known/openid-configuration` });
          return res.end();
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(
          JSON.stringify({
            issuer: mode === 'wrong-issuer' ? real.url : evilUrl,
            jwks_uri: `${evilUrl}/keys`,
          }),
        );
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      // no content-length: the limit must hold while streaming
      res.write('{"keys":[');
      res.end(`${'{"kty":"oct"},'.repeat(40_000)}{}]}`);
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    // `localhost` rather than 127.0.0.1: another host than the real issuer's, still loopback
    const evilUrl = `http://localhost:${(evil.address() as AddressInfo).port}`;
    const lines: string[] = [];
    const s = await sqlite.startServer({
      config: { allowHttpIssuers: true, rateLimitPerKey: 0, oidcJwksCooldownMs: 0 },
      logger: { ...loggerOptions('info'), stream: { write: (l: string) => void lines.push(l) } },
    });
    try {
      const k = await s.seedKey({ email: 'evil@example.com' });
      const orgId = (
        await s.app.inject({ method: 'GET', url: '/v1/me', headers: { 'xi-api-key': k.apiKey } })
      ).json().org.id;
      const created = await s.app.inject({
        method: 'POST',
        url: `/v1/orgs/${orgId}/oidc-trusts`,
        headers: { 'xi-api-key': k.apiKey },
        payload: { issuer: evilUrl, audience: 'a', claims: { repository: 'acme/api' } },
      });
      expect(created.statusCode).toBe(201);
      const reasons: string[] = [];
      for (const m of ['redirect', 'huge', 'wrong-issuer'] as const) {
        mode = m;
        const token = await real.sign({ iss: evilUrl, aud: 'a', repository: 'acme/api' });
        const res = await s.app.inject({ method: 'POST', url: '/v1/oidc/exchange', payload: { token } });
        expect(res.statusCode, m).toBe(401);
        const last = lines
          .map((l) => JSON.parse(l))
          .filter((l) => l.msg === 'oidc exchange refused')
          .at(-1);
        reasons.push(last.reason);
      }
      expect(reasons).toEqual([
        'issuer redirect refused',
        'issuer answer too large',
        'discovery document names another issuer',
      ]);
      expect(real.hits['/.well-known/openid-configuration'] ?? 0).toBe(0);
    } finally {
      await s.close();
      await real.close();
      await new Promise<void>((r) => evil.close(() => r()));
    }
  });
});
