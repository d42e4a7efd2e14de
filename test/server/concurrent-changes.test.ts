import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Role } from '../../src/core/types.js';
import type { JwtService } from '../../src/server/jwt.js';
import { MAX_WEBHOOKS_PER_ORG } from '../../src/server/services/webhooks.js';
import { LoginsRepo } from '../../src/server/store/logins.js';
import { testEngines } from '../helpers/engines.js';
import type { TestServer } from '../helpers/server.js';
import { openSse } from '../helpers/sse.js';

/**
 * Changes that race each other, black-box over HTTP on both engines (PostgreSQL runs the requests
 * of one burst on several connections at once; SQLite serialises transactions but not the reads
 * that come before them): no 5xx, no broken invariant, whatever order they land in.
 */
const eng = testEngines();
afterAll(() => eng.stop());

const uniq = () => randomBytes(4).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Json = Record<string, unknown>;
interface OrgUser {
  id: string;
  role: Role;
  auth: Record<string, string>;
}

for (const engine of eng.list) {
  describe.skipIf(engine.skip)(`concurrent changes on ${engine.name}`, () => {
    let s: TestServer;
    let base = '';

    beforeAll(async () => {
      s = await engine.startServer({ config: { rateLimitPerKey: 0 } });
      base = await s.app.listen({ host: '127.0.0.1', port: 0 });
    }, 60_000);
    afterAll(() => s?.close());

    async function call(key: string | Record<string, string>, method: string, url: string, payload?: object) {
      const res = await s.app.inject({
        method: method as 'GET',
        url,
        headers: typeof key === 'string' ? { 'xi-api-key': key } : key,
        ...(payload ? { payload } : {}),
      });
      return { status: res.statusCode, body: (res.body ? res.json() : {}) as Json };
    }

    /** An owner of a personal organization (admin key) and a new, empty project there. */
    async function ownerWithProject() {
      const o = await s.seedKey({ email: `o-${uniq()}@example.com` });
      const orgId = ((await call(o.apiKey, 'GET', '/v1/me')).body.org as Json).id as string;
      const p = await call(o.apiKey, 'POST', `/v1/orgs/${orgId}/projects`, { name: `p-${uniq()}` });
      expect(p.status).toBe(201);
      return { key: o.apiKey, orgId, projectId: p.body.id as string };
    }

    const trustIn = (projectId: string) => ({
      issuer: 'https://token.actions.githubusercontent.com',
      claims: { repository: 'acme/api' },
      project_id: projectId,
    });

    it('a project deleted while keys and OIDC trusts are created in it: no 5xx, and nothing is left naming a deleted project', async () => {
      for (let round = 0; round < 8; round++) {
        const o = await ownerWithProject();
        const results = await Promise.all([
          call(o.key, 'POST', '/v1/api-keys', { name: 'k1', project_id: o.projectId }),
          call(o.key, 'DELETE', `/v1/projects/${o.projectId}`),
          call(o.key, 'POST', `/v1/orgs/${o.orgId}/oidc-trusts`, trustIn(o.projectId)),
          call(o.key, 'POST', '/v1/api-keys', { name: 'k2', project_id: o.projectId }),
        ]);
        const [k1, del, trust, k2] = results.map((r) => r.status);
        expect(
          results.filter((r) => r.status >= 500),
          JSON.stringify(results.map((r) => r.status)),
        ).toEqual([]);
        expect([201, 404]).toContain(k1);
        expect([201, 404]).toContain(k2);
        expect([201, 404]).toContain(trust);
        // deleted: no key was created in it (a key would have made the deletion a 409)
        if (del === 204) expect([k1, k2]).not.toContain(201);
        else expect(del).toBe(409);
        const keys = await call(o.key, 'GET', '/v1/api-keys?limit=200');
        const trusts = await call(o.key, 'GET', `/v1/orgs/${o.orgId}/oidc-trusts`);
        const left = [...(keys.body.data as Json[]), ...(trusts.body.data as Json[])].filter(
          (x) => x.project_id === o.projectId,
        );
        if (del === 204) expect(left).toEqual([]);
      }
    });

    it(`${MAX_WEBHOOKS_PER_ORG + 10} webhooks created at once: exactly ${MAX_WEBHOOKS_PER_ORG} succeed, the cap holds`, async () => {
      const o = await ownerWithProject();
      const n = MAX_WEBHOOKS_PER_ORG + 10;
      const results = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          // a public IP literal: no DNS, and nothing here sends it an event
          call(o.key, 'POST', `/v1/orgs/${o.orgId}/webhooks`, {
            url: `https://93.184.216.34/hook-${i}`,
            events: ['oidc.exchanged'],
          }),
        ),
      );
      const statuses = results.map((r) => r.status);
      expect(statuses.filter((x) => x === 201)).toHaveLength(MAX_WEBHOOKS_PER_ORG);
      expect(statuses.filter((x) => x === 409)).toHaveLength(n - MAX_WEBHOOKS_PER_ORG);
      const list = await call(o.key, 'GET', `/v1/orgs/${o.orgId}/webhooks`);
      expect(list.body.data).toHaveLength(MAX_WEBHOOKS_PER_ORG);
    });

    it('event streams of one key opened at once count each other: the per-key cap holds', async () => {
      const o = await ownerWithProject();
      const verifier = await call(o.key, 'POST', '/v1/api-keys', { name: 'verifier', scopes: ['verify'] });
      const cap = s.app.breeze.config.maxEventStreamsPerKey;
      // no stream is open on this server yet: the first ones wait for the hub to start following
      const opened = await Promise.all(
        Array.from({ length: cap + 7 }, () =>
          openSse(`${base}/v1/keys/events`, { 'xi-api-key': verifier.body.api_key as string }),
        ),
      );
      try {
        expect(opened.filter((st) => st.status === 200)).toHaveLength(cap);
        expect(opened.filter((st) => st.status === 429)).toHaveLength(7);
      } finally {
        for (const st of opened) st.close();
      }
      // every slot is given back: the key may open its streams again
      await sleep(200);
      const again = await Promise.all(
        Array.from({ length: cap }, () =>
          openSse(`${base}/v1/keys/events`, { 'xi-api-key': verifier.body.api_key as string }),
        ),
      );
      for (const st of again) st.close();
      expect(again.map((st) => st.status)).toEqual(Array(cap).fill(200));
    });

    /** A new organization with one user per role given (a JWT each), created straight in the store. */
    async function orgWith(roles: Role[]) {
      const jwt = (s.app as unknown as { jwtService: JwtService }).jwtService;
      const users: OrgUser[] = [];
      for (const role of roles) {
        const u = await s.store.users.ensure(`${role}-${uniq()}@example.com`);
        users.push({ id: u.id, role, auth: { authorization: `Bearer ${(await jwt.issue(u.id)).token}` } });
      }
      const [first, ...rest] = users;
      if (first?.role !== 'owner') throw new Error('the first user is the owner');
      const { org } = await s.store.transaction((tx) => tx.orgs.create(`Org ${uniq()}`, first.id));
      for (const u of rest) await s.store.orgs.addMember(org.id, u.id, u.role);
      const roleOf = async (userId: string) => (await s.store.orgs.membership(org.id, userId))?.role;
      return { orgId: org.id, users, roleOf };
    }

    it('an admin changing a member who is being made owner at that moment cannot demote or remove the new owner', async () => {
      for (let round = 0; round < 6; round++) {
        const { orgId, users, roleOf } = await orgWith(['owner', 'admin', 'member', 'member']);
        const [owner, admin, m1, m2] = users as [OrgUser, OrgUser, OrgUser, OrgUser];
        const results = await Promise.all([
          call(owner.auth, 'PATCH', `/v1/orgs/${orgId}/members/${m1.id}`, { role: 'owner' }),
          call(admin.auth, 'PATCH', `/v1/orgs/${orgId}/members/${m1.id}`, { role: 'viewer' }),
          call(owner.auth, 'PATCH', `/v1/orgs/${orgId}/members/${m2.id}`, { role: 'owner' }),
          call(admin.auth, 'DELETE', `/v1/orgs/${orgId}/members/${m2.id}`),
        ]);
        const statuses = results.map((r) => r.status);
        // whichever order they land in, an admin never touches an owner: a promotion stands (the
        // admin's change either came first and was overwritten, or came second and was refused)
        expect(statuses[0], JSON.stringify(statuses)).toBe(200);
        expect([200, 403]).toContain(statuses[1]);
        expect(await roleOf(m1.id), JSON.stringify(statuses)).toBe('owner');
        if (statuses[3] === 204) {
          // the removal came first: there was no member left to promote
          expect(statuses[2], JSON.stringify(statuses)).toBe(404);
          expect(await roleOf(m2.id)).toBeUndefined();
        } else {
          expect(statuses[3], JSON.stringify(statuses)).toBe(403);
          expect(statuses[2]).toBe(200);
          expect(await roleOf(m2.id)).toBe('owner');
        }
      }
    });

    it('owners demoting each other at once: never both (each would act as an owner it no longer is), never no owner', async () => {
      for (let round = 0; round < 6; round++) {
        for (const owners of [2, 3]) {
          const { orgId, users, roleOf } = await orgWith(Array(owners).fill('owner') as Role[]);
          const [a, b] = users as [OrgUser, OrgUser];
          const results = await Promise.all([
            call(a.auth, 'PATCH', `/v1/orgs/${orgId}/members/${b.id}`, { role: 'member' }),
            call(b.auth, 'PATCH', `/v1/orgs/${orgId}/members/${a.id}`, { role: 'member' }),
          ]);
          const statuses = results.map((r) => r.status);
          expect(
            statuses.filter((x) => x === 200),
            JSON.stringify(statuses),
          ).toHaveLength(1);
          // the loser was demoted first: refused as a member (403), or as the last owner (409)
          expect(statuses.filter((x) => x === 403 || x === 409)).toHaveLength(1);
          const left = await Promise.all(users.map((u) => roleOf(u.id)));
          expect(left.filter((r) => r === 'owner')).toHaveLength(owners - 1);
        }
      }
    });

    it('a key disabled (then enabled) by several calls at once: one change, one audit event, one disabled_at in every answer', async () => {
      for (let round = 0; round < 5; round++) {
        const o = await ownerWithProject();
        const k = await call(o.key, 'POST', '/v1/api-keys', { name: `k-${round}` });
        const keyId = k.body.key_id as string;
        for (const action of ['disable', 'enable'] as const) {
          const results = await Promise.all(
            Array.from({ length: 4 }, () => call(o.key, 'POST', `/v1/api-keys/${keyId}/${action}`)),
          );
          expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
          expect(new Set(results.map((r) => r.body.disabled_at)).size).toBe(1);
          const events = await call(o.key, 'GET', `/v1/audit-events?key_id=${keyId}&action=key.${action}d`);
          expect(events.body.data, action).toHaveLength(1);
        }
      }
    });

    it('scopes patched by two calls at once: a narrowing is announced (key.revoked) and audited against the scopes it replaced', async () => {
      for (let round = 0; round < 8; round++) {
        const o = await ownerWithProject();
        const k = await call(o.key, 'POST', '/v1/api-keys', { name: `k-${round}`, scopes: ['read'] });
        const keyId = k.body.key_id as string;
        const [widen, narrow] = await Promise.all([
          call(o.key, 'PATCH', `/v1/api-keys/${keyId}`, { scopes: ['read', 'write'] }),
          call(o.key, 'PATCH', `/v1/api-keys/${keyId}`, { scopes: ['read'] }),
        ]);
        expect([widen.status, narrow.status]).toEqual([200, 200]);
        const final = (await call(o.key, 'GET', `/v1/api-keys/${keyId}`)).body.scopes as string[];
        const revoked = await s.store.db
          .selectFrom('key_events')
          .select('reason')
          .where('key_id', '=', keyId)
          .execute();
        const updates = (await call(o.key, 'GET', `/v1/audit-events?key_id=${keyId}&action=key.updated`)).body
          .data as { details: { changes: { scopes?: { from: string[]; to: string[] } } } }[];
        const scopeChanges = updates.map((e) => e.details.changes.scopes).filter(Boolean);
        if (final.length === 1) {
          // the widening landed first: the narrowing that followed took write away from a key
          // verifiers may hold as read,write, and must say so
          expect(
            revoked.map((r) => r.reason),
            JSON.stringify(scopeChanges),
          ).toEqual(['narrowed']);
          // (the log is newest first)
          expect(scopeChanges).toEqual([
            { from: ['read', 'write'], to: ['read'] },
            { from: ['read'], to: ['read', 'write'] },
          ]);
        } else {
          // the narrowing landed first and changed nothing
          expect(final).toEqual(['read', 'write']);
          expect(revoked).toEqual([]);
          expect(scopeChanges).toEqual([{ from: ['read'], to: ['read', 'write'] }]);
        }
      }
    });

    /**
     * An organization whose owner (JWT) has a key `target` of scopes `read`, and whose admin holds a
     * key of `read` and `admin` only: it may change `target` only while `target` holds no `write`.
     */
    async function keyAndNarrowAdmin() {
      const { orgId, users } = await orgWith(['owner', 'admin']);
      const [owner, admin] = users as [OrgUser, OrgUser];
      const projectId = (await s.store.orgs.projectByName(orgId, 'default'))?.id as string;
      const target = await call(owner.auth, 'POST', '/v1/api-keys', {
        name: 'target',
        project_id: projectId,
      });
      const adminKey = await call(admin.auth, 'POST', '/v1/api-keys', {
        name: 'admin',
        project_id: projectId,
        scopes: ['read', 'admin'],
      });
      expect([target.status, adminKey.status]).toEqual([201, 201]);
      return { owner, keyId: target.body.key_id as string, adminKey: adminKey.body.api_key as string };
    }

    it('an admin changing a key that its owner is widening at that moment is judged on the widened key', async () => {
      for (let round = 0; round < 8; round++) {
        const { owner, keyId, adminKey } = await keyAndNarrowAdmin();
        const [widen, narrow] = await Promise.all([
          call(owner.auth, 'PATCH', `/v1/api-keys/${keyId}`, { scopes: ['read', 'write'] }),
          call(adminKey, 'PATCH', `/v1/api-keys/${keyId}`, { scopes: ['read'] }),
        ]);
        const statuses = JSON.stringify([widen.status, narrow.status, narrow.body]);
        expect(widen.status, statuses).toBe(200);
        // the admin's change either came first (and changed nothing) or was refused: it never takes
        // away `write`, a scope the admin's key does not hold
        expect([200, 403], statuses).toContain(narrow.status);
        const final = await call(owner.auth, 'GET', `/v1/api-keys/${keyId}`);
        expect(final.body.scopes, statuses).toEqual(['read', 'write']);
      }
    });

    it('an admin changing a key widened between its read and its change is refused (the change is judged on the key it replaces)', async () => {
      const { owner, keyId, adminKey } = await keyAndNarrowAdmin();
      // the owner's widening lands right after the admin's call read the key (and was authorized on
      // it), before the admin's transaction begins
      const keys = s.app.breeze.keys;
      const update = keys.update.bind(keys);
      const spy = vi.spyOn(keys, 'update').mockImplementationOnce(async (...args) => {
        await s.store.keys.update(keyId, { scopes: 'read write' });
        return update(...args);
      });
      try {
        const narrow = await call(adminKey, 'PATCH', `/v1/api-keys/${keyId}`, { scopes: ['read'] });
        expect(spy).toHaveBeenCalledTimes(1);
        expect(narrow.status, JSON.stringify(narrow.body)).toBe(403);
        expect((narrow.body.error as Json).code).toBe('FORBIDDEN');
      } finally {
        spy.mockRestore();
      }
      const final = await call(owner.auth, 'GET', `/v1/api-keys/${keyId}`);
      expect(final.body.scopes).toEqual(['read', 'write']);
      // refused: nothing was recorded as the admin's change
      const updates = await call(owner.auth, 'GET', `/v1/audit-events?key_id=${keyId}&action=key.updated`);
      expect(updates.body.data).toEqual([]);
    });

    if (engine.name === 'postgres')
      it('an admin changing a key whose widening is under way (not yet committed) is refused once it lands', async () => {
        const { owner, keyId, adminKey } = await keyAndNarrowAdmin();
        // the owner's widening, as another instance makes it: the key locked and widened, not committed
        let release = () => {};
        let widened = () => {};
        const held = new Promise<void>((r) => {
          release = r;
        });
        const inFlight = new Promise<void>((r) => {
          widened = r;
        });
        const done = s.store.db.transaction().execute(async (trx) => {
          await trx.selectFrom('api_keys').select('id').where('id', '=', keyId).forUpdate().execute();
          await trx.updateTable('api_keys').set({ scopes: 'read write' }).where('id', '=', keyId).execute();
          widened();
          await held;
        });
        await inFlight;
        // the admin reads the key as it was (read), then waits for the lock
        const narrowing = call(adminKey, 'PATCH', `/v1/api-keys/${keyId}`, { scopes: ['read'] });
        await sleep(300);
        release();
        await done;
        const narrow = await narrowing;
        expect(narrow.status, JSON.stringify(narrow.body)).toBe(403);
        expect((narrow.body.error as Json).code).toBe('FORBIDDEN');
        const final = await call(owner.auth, 'GET', `/v1/api-keys/${keyId}`);
        expect(final.body.scopes).toEqual(['read', 'write']);
      });

    /** Holds a deletion of `projectId` as another instance makes it: locked and deleted, not committed until `release`. */
    async function deletionUnderWay(projectId: string) {
      let release = () => {};
      let deleted = () => {};
      const held = new Promise<void>((r) => {
        release = r;
      });
      const inFlight = new Promise<void>((r) => {
        deleted = r;
      });
      const done = s.store.db.transaction().execute(async (trx) => {
        await trx.selectFrom('projects').select('id').where('id', '=', projectId).forUpdate().execute();
        await trx.deleteFrom('projects').where('id', '=', projectId).execute();
        deleted();
        await held;
      });
      await inFlight;
      return async () => {
        release();
        await done;
      };
    }

    if (engine.name === 'postgres')
      it('a CLI login approved for a project that is being deleted at the exchange mints its key in the personal default project', async () => {
        const o = await ownerWithProject();
        const verifier = randomBytes(32).toString('base64url');
        const created = await s.app.inject({
          method: 'POST',
          url: '/v1/cli/logins',
          payload: {
            code_challenge: createHash('sha256').update(verifier).digest('base64url'),
            code_challenge_method: 'S256',
            client_name: 'breeze/0.1.0',
            hostname: 'laptop',
          },
        });
        const loginId = created.json().login_id as string;
        const me = await call(o.key, 'GET', '/v1/me');
        const userId = (me.body.user as Json).id as string;
        // approved in the browser, with the new project picked
        const approved = await new LoginsRepo(s.store.db).decide(
          loginId,
          { status: 'approved', userId, approvalCodeHash: null, projectId: o.projectId },
          new Date(),
        );
        expect(approved).toBe(true);
        const commitDeletion = await deletionUnderWay(o.projectId);
        const exchanging = s.app.inject({
          method: 'POST',
          url: `/v1/cli/logins/${loginId}/exchange`,
          payload: { code_verifier: verifier },
        });
        await sleep(300);
        await commitDeletion();
        const res = await exchanging;
        expect(res.statusCode, res.body).toBe(200);
        const personalDefault = (await s.store.orgs.projectByName(o.orgId, 'default'))?.id;
        expect(res.json().key.project_id).toBe(personalDefault);
      });

    if (engine.name === 'postgres')
      it('a key or OIDC trust created while a deletion of its project is under way (not yet committed) is 404, not 500', async () => {
        const o = await ownerWithProject();
        const commitDeletion = await deletionUnderWay(o.projectId);
        const creating = Promise.all([
          call(o.key, 'POST', '/v1/api-keys', { name: 'late', project_id: o.projectId }),
          call(o.key, 'POST', `/v1/orgs/${o.orgId}/oidc-trusts`, trustIn(o.projectId)),
        ]);
        await sleep(300);
        await commitDeletion();
        const [key, trust] = await creating;
        expect(key.status, JSON.stringify(key.body)).toBe(404);
        expect(trust.status, JSON.stringify(trust.body)).toBe(404);
      });
  });
}
