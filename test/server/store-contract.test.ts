import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { newKeyId, ulid } from '../../src/core/ids.js';
import type { ApiKeyInfo, KeyListResponse, Scope } from '../../src/core/types.js';
import { CodesRepo } from '../../src/server/store/codes.js';
import { openStore, type Store } from '../../src/server/store/index.js';
import { type KeyRow, newKeyRow } from '../../src/server/store/keys.js';
import { type LoginRow, LoginsRepo } from '../../src/server/store/logins.js';
import { SessionsRepo } from '../../src/server/store/sessions.js';
import {
  type SigningKeyRow,
  SigningKeysRepo,
  withSigningKeyLock,
} from '../../src/server/store/signing-keys.js';
import { postgresAvailability, startPostgres, type TestPostgres, uniqueDbName } from '../helpers/postgres.js';
import { requirePart } from '../helpers/require.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * One contract, every engine: the same tests run against SQLite (a real file in a temp dir) and a
 * real PostgreSQL server. The PostgreSQL database uses an ICU en-US collation, as real deployments
 * often do, so text ordering of ids and timestamps is checked under a non-byte collation too.
 */

const pgAvail = postgresAvailability();
const skipPostgres = requirePart('PostgreSQL', pgAvail.available, pgAvail.why);

let pgServer: TestPostgres | undefined;
afterAll(async () => {
  await pgServer?.stop();
});

interface OpenedStore {
  store: Store;
  /** another store on the same database, as a second process or instance would open it */
  openAnother(): Promise<Store>;
  dispose(): Promise<void>;
}

interface EngineUnderTest {
  name: 'sqlite' | 'postgres';
  skip: boolean;
  open(): Promise<OpenedStore>;
}

const engines: EngineUnderTest[] = [
  {
    name: 'sqlite',
    skip: false,
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'breeze-contract-'));
      const store = await openStore({ dataDir: dir });
      const others: Store[] = [];
      return {
        store,
        async openAnother() {
          const s = await openStore({ dataDir: dir });
          others.push(s);
          return s;
        },
        async dispose() {
          for (const s of others) await s.close();
          await store.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'postgres',
    skip: skipPostgres,
    async open() {
      pgServer ??= await startPostgres();
      const url = await pgServer.createDatabase(uniqueDbName('contract'), { icuLocale: 'en-US' });
      const store = await openStore({ databaseUrl: url });
      const others: Store[] = [];
      return {
        store,
        async openAnother() {
          const s = await openStore({ databaseUrl: url });
          others.push(s);
          return s;
        },
        async dispose() {
          for (const s of others) await s.close();
          await store.close();
        },
      };
    },
  },
];

const MINUTE = 60_000;
const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
let emailSeq = 0;
const uniqueEmail = () => `user${++emailSeq}.${Date.now()}@example.com`;
let hashSeq = 0;

/** Personal organization and `default` project of each user made by ensureUser (keys go there). */
const personal = new Map<string, { orgId: string; projectId: string }>();

/** `users.ensure`, remembering the user's personal organization for keyRow. */
async function ensureUser(store: Store, email: string) {
  const user = await store.users.ensure(email);
  const { org, project } = await store.orgs.ensurePersonal(user);
  personal.set(user.id, { orgId: org.id, projectId: project.id });
  return user;
}

function keyRow(userId: string, o: Partial<KeyRow> & { at?: number } = {}): KeyRow {
  const at = o.at ?? T0;
  const { at: _at, ...rest } = o;
  const home = personal.get(userId) ??
    [...personal.values()][0] ?? { orgId: 'org_none', projectId: 'proj_none' };
  return {
    ...newKeyRow({
      id: newKeyId(at),
      userId,
      orgId: home.orgId,
      projectId: home.projectId,
      name: 'k',
      prefix: 'brz_AbCdEfGh',
      hash: `hash-${process.pid}-${++hashSeq}-${ulid()}`,
      scopes: ['read', 'write'],
      createdAt: iso(at),
      expiresAt: null,
      createdVia: 'api',
    }),
    ...rest,
  };
}

for (const engine of engines) {
  describe.skipIf(engine.skip)(`store contract on ${engine.name}`, () => {
    let store: Store;
    let openAnother: () => Promise<Store>;
    let dispose: () => Promise<void>;

    beforeAll(async () => {
      ({ store, openAnother, dispose } = await engine.open());
    });
    afterAll(async () => {
      await dispose?.();
    });

    test('reports its engine', () => {
      expect(store.engine).toBe(engine.name);
    });

    describe('users', () => {
      test('ensure stores the email trimmed and lower-cased and returns the same user for any spelling', async () => {
        const email = uniqueEmail();
        const a = await store.users.ensure(`  ${email.toUpperCase()} `);
        expect(a.email).toBe(email);
        expect(a.id).toMatch(/^usr_[0-9A-Z]{26}$/);
        expect(typeof a.created_at).toBe('string');
        const b = await store.users.ensure(email);
        expect(b).toEqual(a);
        expect(await store.users.findByEmail(email.toUpperCase())).toEqual(a);
        expect(await store.users.get(a.id)).toEqual(a);
      });

      test('concurrent ensure of one new email creates exactly one user', async () => {
        const email = uniqueEmail();
        const users = await Promise.all(Array.from({ length: 8 }, () => store.users.ensure(email)));
        expect(new Set(users.map((u) => u.id)).size).toBe(1);
      });

      test('unknown users are undefined', async () => {
        expect(await store.users.get('usr_00000000000000000000000000')).toBeUndefined();
        expect(await store.users.findByEmail('nobody@example.com')).toBeUndefined();
      });
    });

    describe('keys', () => {
      test('insert then get returns exactly the row written (nulls stay null, text stays text)', async () => {
        const user = await ensureUser(store, uniqueEmail());
        const row = keyRow(user.id, { expires_at: iso(T0 + MINUTE), rotated_from: 'key_X' });
        await store.keys.insert(row);
        expect(await store.keys.get(row.id)).toEqual(row);
        expect(await store.keys.get(newKeyId())).toBeUndefined();
      });

      test('findByHash returns the key with its owner email; an unknown hash finds nothing', async () => {
        const email = uniqueEmail();
        const user = await ensureUser(store, email);
        const row = keyRow(user.id);
        await store.keys.insert(row);
        // with the creator's role in the key's organization and the names /v1/me shows (issue 12)
        expect(await store.keys.findByHash(row.hash)).toEqual({
          key: row,
          email,
          role: 'owner',
          org_name: `${email}'s organization`,
          project_name: 'default',
        });
        expect(await store.keys.findByHash('no-such-hash')).toBeUndefined();
      });

      test('a hash is unique and a key needs an existing user', async () => {
        const user = await ensureUser(store, uniqueEmail());
        const row = keyRow(user.id);
        await store.keys.insert(row);
        await expect(store.keys.insert({ ...keyRow(user.id), hash: row.hash })).rejects.toThrow();
        await expect(store.keys.insert(keyRow('usr_00000000000000000000000000'))).rejects.toThrow();
      });

      test('list: newest first, paginated by id, only the given user, status filters at `now`', async () => {
        const user = await ensureUser(store, uniqueEmail());
        const other = await ensureUser(store, uniqueEmail());
        const now = T0 + 100 * MINUTE;
        const rows = {
          active: keyRow(user.id, { at: T0 + 1 * MINUTE }),
          expiring: keyRow(user.id, { at: T0 + 2 * MINUTE, expires_at: iso(now + MINUTE) }),
          expired: keyRow(user.id, { at: T0 + 3 * MINUTE, expires_at: iso(now - MINUTE) }),
          expiredNow: keyRow(user.id, { at: T0 + 4 * MINUTE, expires_at: iso(now) }),
          disabled: keyRow(user.id, { at: T0 + 5 * MINUTE, disabled_at: iso(now - MINUTE) }),
          disabledExpiring: keyRow(user.id, {
            at: T0 + 6 * MINUTE,
            disabled_at: iso(now - MINUTE),
            expires_at: iso(now + MINUTE),
          }),
          active2: keyRow(user.id, { at: T0 + 7 * MINUTE }),
        };
        // inserted out of order: the order must come from the ids, not insertion
        for (const r of [rows.expired, rows.active2, rows.active, rows.disabled, rows.expiring]) {
          await store.keys.insert(r);
        }
        await store.keys.insert(rows.disabledExpiring);
        await store.keys.insert(rows.expiredNow);
        await store.keys.insert(keyRow(other.id, { at: T0 + 8 * MINUTE }));

        const ids = (list: KeyRow[]) => list.map((r) => r.id);
        const at = new Date(now);
        const all = await store.keys.list(user.id, { limit: 50, now: at });
        expect(ids(all)).toEqual(
          [
            rows.active2,
            rows.disabledExpiring,
            rows.disabled,
            rows.expiredNow,
            rows.expired,
            rows.expiring,
            rows.active,
          ].map((r) => r.id),
        );

        const page1 = await store.keys.list(user.id, { limit: 3, now: at });
        const page2 = await store.keys.list(user.id, { limit: 3, now: at, beforeId: page1[2]?.id });
        const page3 = await store.keys.list(user.id, { limit: 3, now: at, beforeId: page2[2]?.id });
        expect([...ids(page1), ...ids(page2), ...ids(page3)]).toEqual(ids(all));
        expect(page3).toHaveLength(1);

        const byStatus = async (status: 'active' | 'expiring' | 'expired' | 'disabled') =>
          ids(await store.keys.list(user.id, { limit: 50, now: at, status }));
        expect(await byStatus('active')).toEqual([rows.active2.id, rows.active.id]);
        expect(await byStatus('expiring')).toEqual([rows.expiring.id]);
        expect(await byStatus('expired')).toEqual([rows.expiredNow.id, rows.expired.id]);
        expect(await byStatus('disabled')).toEqual([rows.disabledExpiring.id, rows.disabled.id]);
      });

      test('update patches fields and returns the new row; an unknown id gives undefined', async () => {
        const user = await ensureUser(store, uniqueEmail());
        const row = keyRow(user.id);
        await store.keys.insert(row);
        const updated = await store.keys.update(row.id, { name: 'renamed', disabled_at: iso(T0) });
        expect(updated).toEqual({ ...row, name: 'renamed', disabled_at: iso(T0) });
        expect(await store.keys.get(row.id)).toEqual(updated);
        expect(await store.keys.update(row.id, { disabled_at: null })).toEqual({ ...row, name: 'renamed' });
        expect(await store.keys.update(newKeyId(), { name: 'x' })).toBeUndefined();
      });

      test('delete removes the key once', async () => {
        const user = await ensureUser(store, uniqueEmail());
        const row = keyRow(user.id);
        await store.keys.insert(row);
        expect(await store.keys.delete(row.id)).toBe(true);
        expect(await store.keys.delete(row.id)).toBe(false);
        expect(await store.keys.get(row.id)).toBeUndefined();
        expect(await store.keys.findByHash(row.hash)).toBeUndefined();
      });

      test('touch records use and never moves last_used_at backwards', async () => {
        const user = await ensureUser(store, uniqueEmail());
        const row = keyRow(user.id);
        await store.keys.insert(row);
        const lastUsed = async () => (await store.keys.get(row.id))?.last_used_at;
        await store.keys.touch(row.id, iso(T0 + 5 * MINUTE));
        expect(await lastUsed()).toBe(iso(T0 + 5 * MINUTE));
        await store.keys.touch(row.id, iso(T0 + 2 * MINUTE));
        expect(await lastUsed()).toBe(iso(T0 + 5 * MINUTE));
        await store.keys.touch(row.id, iso(T0 + 61 * MINUTE));
        expect(await lastUsed()).toBe(iso(T0 + 61 * MINUTE));
        // concurrent touches: the latest wins whatever order they land in
        await Promise.all([3, 90, 70, 10].map((m) => store.keys.touch(row.id, iso(T0 + m * MINUTE))));
        expect(await lastUsed()).toBe(iso(T0 + 90 * MINUTE));
      });
    });

    describe('organizations, memberships, projects, invitations', () => {
      test('ensurePersonal is idempotent, also when racing: one org, one owner membership, one default project', async () => {
        const user = await store.users.ensure(uniqueEmail());
        const other = await openAnother();
        const results = await Promise.all([
          ...Array.from({ length: 4 }, () => store.orgs.ensurePersonal(user)),
          ...Array.from({ length: 4 }, () => other.orgs.ensurePersonal(user)),
        ]);
        expect(new Set(results.map((r) => r.org.id)).size).toBe(1);
        expect(new Set(results.map((r) => r.project.id)).size).toBe(1);
        const orgs = await store.orgs.listForUser(user.id);
        expect(orgs).toEqual([
          {
            id: results[0]?.org.id,
            name: `${user.email}'s organization`,
            role: 'owner',
            created_at: expect.any(String),
          },
        ]);
        expect((await store.orgs.listProjects(results[0]?.org.id ?? '')).map((p) => p.name)).toEqual([
          'default',
        ]);
        expect((await store.orgs.personalOf(user.id))?.id).toBe(results[0]?.org.id);
      });

      test('create, members (add once, role, remove, count owners), lock', async () => {
        const owner = await store.users.ensure(uniqueEmail());
        const mate = await store.users.ensure(uniqueEmail());
        const { org, project } = await store.transaction((tx) =>
          tx.orgs.create('Acme', owner.id, new Date(T0)),
        );
        expect(org.id).toMatch(/^org_[0-9A-Z]{26}$/);
        expect(project).toMatchObject({ org_id: org.id, name: 'default' });
        expect(await store.orgs.addMember(org.id, mate.id, 'viewer', new Date(T0 + MINUTE))).toBe(true);
        expect(await store.orgs.addMember(org.id, mate.id, 'admin')).toBe(false);
        expect((await store.orgs.membership(org.id, mate.id))?.role).toBe('viewer');
        expect((await store.orgs.listMembers(org.id)).map((m) => [m.email, m.role])).toEqual([
          [owner.email, 'owner'],
          [mate.email, 'viewer'],
        ]);
        expect(await store.orgs.countOwners(org.id)).toBe(1);
        expect(await store.orgs.setRole(org.id, mate.id, 'owner')).toBe(true);
        expect(await store.orgs.countOwners(org.id)).toBe(2);
        expect((await store.orgs.listForUser(mate.id)).find((o) => o.id === org.id)?.role).toBe('owner');
        expect(await store.transaction((tx) => tx.orgs.lock(org.id))).toBe(true);
        expect(await store.transaction((tx) => tx.orgs.lock('org_00000000000000000000000000'))).toBe(false);
        expect(await store.orgs.removeMember(org.id, mate.id)).toBe(true);
        expect(await store.orgs.removeMember(org.id, mate.id)).toBe(false);
        expect(await store.orgs.membership(org.id, mate.id)).toBeUndefined();
      });

      test('findByHash gives a removed creator no role; idsByCreator and list filter by org, user and project', async () => {
        const owner = await ensureUser(store, uniqueEmail());
        const mate = await ensureUser(store, uniqueEmail());
        const { org, project } = await store.transaction((tx) => tx.orgs.create('Keys Inc', owner.id));
        const second = await store.orgs.createProject(org.id, 'second');
        expect(second).toBeDefined();
        await store.orgs.addMember(org.id, mate.id, 'member');
        const inOrg = (userId: string, projectId: string, at: number) =>
          ({ ...keyRow(userId, { at }), org_id: org.id, project_id: projectId }) as KeyRow;
        const a = inOrg(mate.id, project.id, T0 + 1);
        const b = inOrg(mate.id, second?.id ?? '', T0 + 2);
        const c = inOrg(owner.id, project.id, T0 + 3);
        const elsewhere = keyRow(mate.id, { at: T0 + 4 });
        for (const r of [a, b, c, elsewhere]) await store.keys.insert(r);
        expect(await store.keys.findByHash(a.hash)).toMatchObject({
          role: 'member',
          org_name: 'Keys Inc',
          project_name: 'default',
        });
        expect((await store.keys.idsByCreator(org.id, mate.id)).sort()).toEqual([a.id, b.id].sort());
        const now = new Date(T0 + MINUTE);
        const ids = async (f: Parameters<Store['keys']['list']>[0]) =>
          (await store.keys.list(f, { limit: 10, now })).map((r) => r.id);
        expect(await ids({ orgId: org.id })).toEqual([c.id, b.id, a.id]);
        expect(await ids({ orgId: org.id, userId: mate.id })).toEqual([b.id, a.id]);
        expect(await ids({ orgId: org.id, projectId: second?.id ?? '' })).toEqual([b.id]);
        expect(await ids(mate.id)).toEqual([elsewhere.id, b.id, a.id]);
        await store.orgs.removeMember(org.id, mate.id);
        expect((await store.keys.findByHash(a.hash))?.role).toBeNull();
        expect((await store.keys.findByHash(elsewhere.hash))?.role).toBe('owner');
      });

      test('projects: unique names per org; a project with keys is not deleted; an empty one is', async () => {
        const owner = await ensureUser(store, uniqueEmail());
        const { org } = await store.transaction((tx) => tx.orgs.create('Proj', owner.id));
        const p = await store.orgs.createProject(org.id, 'api');
        expect(p?.id).toMatch(/^proj_/);
        expect(await store.orgs.createProject(org.id, 'api')).toBeUndefined();
        expect((await store.orgs.projectByName(org.id, 'api'))?.id).toBe(p?.id);
        await store.keys.insert({ ...keyRow(owner.id), org_id: org.id, project_id: p?.id ?? '' });
        expect(await store.orgs.deleteEmptyProject(p?.id ?? '')).toBe(false);
        const empty = await store.orgs.createProject(org.id, 'empty');
        expect(await store.orgs.deleteEmptyProject(empty?.id ?? '')).toBe(true);
        expect(await store.orgs.project(empty?.id ?? '')).toBeUndefined();
        expect((await store.orgs.projectsOfUser(owner.id)).map((x) => x.name)).toEqual(
          expect.arrayContaining(['default', 'api']),
        );
      });

      test('invitations: tries counted up to the limit, accepted exactly once, not after expiry', async () => {
        const owner = await ensureUser(store, uniqueEmail());
        const { org } = await store.transaction((tx) => tx.orgs.create('Inv', owner.id));
        const row = {
          id: `inv_${ulid()}`,
          org_id: org.id,
          email: 'guest@example.com',
          role: 'member',
          code_hash: 'h',
          invited_by: owner.id,
          created_at: iso(T0),
          expires_at: iso(T0 + 7 * 1440 * MINUTE),
          accepted_at: null,
        };
        await store.invitations.insert(row);
        expect((await store.invitations.get(row.id))?.attempts).toBe(0);
        for (let i = 0; i < 5; i++) expect(await store.invitations.addAttempt(row.id, 5)).toBe(true);
        expect(await store.invitations.addAttempt(row.id, 5)).toBe(false);
        const fresh = { ...row, id: `inv_${ulid()}` };
        await store.invitations.insert(fresh);
        expect(await store.invitations.consume(fresh.id, iso(T0 + 8 * 1440 * MINUTE), 5)).toBe(false);
        const both = await Promise.all([
          store.invitations.consume(fresh.id, iso(T0 + MINUTE), 5),
          (await openAnother()).invitations.consume(fresh.id, iso(T0 + MINUTE), 5),
        ]);
        expect(both.filter(Boolean)).toHaveLength(1);
        expect(await store.invitations.addAttempt(fresh.id, 5)).toBe(false);
      });
    });

    describe('transactions', () => {
      test('commit keeps every write; a throw rolls them all back', async () => {
        const user = await ensureUser(store, uniqueEmail());
        const kept = keyRow(user.id);
        await store.transaction(async (tx) => {
          await tx.keys.insert(kept);
        });
        expect(await store.keys.get(kept.id)).toEqual(kept);

        const lost = keyRow(user.id);
        await expect(
          store.transaction(async (tx) => {
            await tx.keys.insert(lost);
            await tx.keys.update(kept.id, { name: 'changed in a failed tx' });
            throw new Error('boom');
          }),
        ).rejects.toThrow('boom');
        expect(await store.keys.get(lost.id)).toBeUndefined();
        expect((await store.keys.get(kept.id))?.name).toBe(kept.name);
      });
    });

    describe('key-change notifications', () => {
      test('listeners in this process hear publishKeyChange at once, until they unsubscribe', async () => {
        const heard: string[] = [];
        const off = store.onKeyChange((id) => heard.push(id));
        const pending = store.publishKeyChange('key_A');
        // synchronous delivery: the local cache is clean before the call even resolves
        expect(heard).toEqual(['key_A']);
        await pending;
        off();
        await store.publishKeyChange('key_B');
        await new Promise((r) => setTimeout(r, 100));
        expect(heard).toEqual(['key_A']);
      });
    });

    describe('email codes', () => {
      const MAX = 5;
      function codeRow(o: { expiresAt?: number } = {}) {
        return {
          id: `code_${ulid()}`,
          email: 'a@example.com',
          purpose: 'api_key',
          code_hash: `h-${ulid()}`,
          created_at: iso(T0),
          expires_at: iso(o.expiresAt ?? T0 + 10 * MINUTE),
          used_at: null,
        };
      }

      test('insert then get: attempts starts at 0 and is a number', async () => {
        const codes = new CodesRepo(store.db);
        const row = codeRow();
        await codes.insert(row);
        const got = await codes.get(row.id);
        expect(got).toEqual({ ...row, attempts: 0 });
        expect(typeof got?.attempts).toBe('number');
        expect(await codes.get('code_nope')).toBeUndefined();
      });

      test('failed attempts count up to the limit, then the code is dead', async () => {
        const codes = new CodesRepo(store.db);
        const row = codeRow();
        await codes.insert(row);
        for (let i = 1; i <= MAX; i++) {
          expect(await codes.addFailedAttempt(row.id, MAX)).toBe(true);
          expect((await codes.get(row.id))?.attempts).toBe(i);
        }
        expect(await codes.addFailedAttempt(row.id, MAX)).toBe(false);
        expect(await codes.consume(row.id, iso(T0 + MINUTE), MAX)).toBe(false);
      });

      test('consume: exactly one of many concurrent callers wins, and only before expiry', async () => {
        const codes = new CodesRepo(store.db);
        const row = codeRow();
        await codes.insert(row);
        const wins = await Promise.all(
          Array.from({ length: 6 }, () => codes.consume(row.id, iso(T0 + MINUTE), MAX)),
        );
        expect(wins.filter(Boolean)).toHaveLength(1);
        expect((await codes.get(row.id))?.used_at).toBe(iso(T0 + MINUTE));
        expect(await codes.addFailedAttempt(row.id, MAX)).toBe(false);

        const late = codeRow();
        await codes.insert(late);
        expect(await codes.consume(late.id, iso(T0 + 10 * MINUTE), MAX)).toBe(false);
        expect(await codes.consume(late.id, iso(T0 + 10 * MINUTE - 1), MAX)).toBe(true);
      });

      test('deleteExpired removes only codes past their life', async () => {
        const codes = new CodesRepo(store.db);
        const old = codeRow({ expiresAt: T0 - MINUTE });
        const fresh = codeRow({ expiresAt: T0 + MINUTE });
        await codes.insert(old);
        await codes.insert(fresh);
        await codes.deleteExpired(iso(T0));
        expect(await codes.get(old.id)).toBeUndefined();
        expect(await codes.get(fresh.id)).toBeDefined();
      });
    });

    describe('browser sessions', () => {
      function sessionRow(userId: string, expiresAt = T0 + 60 * MINUTE) {
        return {
          id: `ses_${ulid()}`,
          token_hash: `th-${ulid()}`,
          user_id: userId,
          created_at: iso(T0),
          expires_at: iso(expiresAt),
        };
      }

      test('findLive returns a live session with its email; expired or unknown ones are not found', async () => {
        const email = uniqueEmail();
        const user = await ensureUser(store, email);
        const sessions = new SessionsRepo(store.db);
        const row = sessionRow(user.id);
        await sessions.insert(row);
        expect(await sessions.findLive(row.token_hash, iso(T0 + MINUTE))).toEqual({ session: row, email });
        expect(await sessions.findLive(row.token_hash, iso(T0 + 60 * MINUTE))).toBeUndefined();
        expect(await sessions.findLive('th-unknown', iso(T0))).toBeUndefined();
        await expect(
          sessions.insert({ ...sessionRow(user.id), token_hash: row.token_hash }),
        ).rejects.toThrow();
      });

      test('deleteByTokenHash ends one session; deleteExpired only dead ones', async () => {
        const user = await ensureUser(store, uniqueEmail());
        const sessions = new SessionsRepo(store.db);
        const ended = sessionRow(user.id);
        const dead = sessionRow(user.id, T0 - MINUTE);
        const live = sessionRow(user.id);
        for (const r of [ended, dead, live]) await sessions.insert(r);
        await sessions.deleteByTokenHash(ended.token_hash);
        expect(await sessions.findLive(ended.token_hash, iso(T0))).toBeUndefined();
        await sessions.deleteExpired(iso(T0));
        const left = await store.db
          .selectFrom('browser_sessions')
          .select('id')
          .where('id', 'in', [ended.id, dead.id, live.id])
          .execute();
        expect(left.map((r) => r.id)).toEqual([live.id]);
      });
    });

    describe('CLI logins', () => {
      function loginRow(o: Partial<LoginRow> = {}): LoginRow {
        return {
          id: `login_${ulid()}`,
          user_code_hash: `uc-${ulid()}`,
          code_challenge: 'challenge',
          client_name: 'breeze/1.0.0',
          hostname: 'laptop',
          key_name: null,
          scopes: 'read write admin',
          redirect_uri: null,
          state: null,
          requester_ip: '127.0.0.1',
          status: 'pending',
          user_id: null,
          approval_code_hash: null,
          interval_s: 2,
          created_at: iso(T0),
          expires_at: iso(T0 + 10 * MINUTE),
          last_poll_at: null,
          decided_at: null,
          project_id: null,
          ...o,
        };
      }

      test('insert then get and findByUserCodeHash; a colliding user code is refused, not thrown', async () => {
        const logins = new LoginsRepo(store.db);
        const row = loginRow();
        expect(await logins.insert(row)).toBe(true);
        const got = await logins.get(row.id);
        expect(got).toEqual(row);
        expect(typeof got?.interval_s).toBe('number');
        expect(await logins.findByUserCodeHash(row.user_code_hash)).toEqual(row);
        expect(await logins.insert(loginRow({ user_code_hash: row.user_code_hash }))).toBe(false);
        expect(await logins.get('login_unknown')).toBeUndefined();
      });

      test('recordPoll refuses polls faster than the interval', async () => {
        const logins = new LoginsRepo(store.db);
        const row = loginRow();
        await logins.insert(row);
        const at = (ms: number) => new Date(T0 + ms);
        expect(await logins.recordPoll(row.id, at(0))).toBe(true);
        expect(await logins.recordPoll(row.id, at(1_999))).toBe(false);
        expect(await logins.recordPoll(row.id, at(2_000))).toBe(true);
        expect(await logins.recordPoll('login_unknown', at(0))).toBe(false);
      });

      test('decide: one decision wins among concurrent ones, and only while alive', async () => {
        const logins = new LoginsRepo(store.db);
        const user = await ensureUser(store, uniqueEmail());
        const row = loginRow();
        await logins.insert(row);
        const results = await Promise.all(
          (['approved', 'denied', 'approved', 'denied'] as const).map((status) =>
            logins.decide(row.id, { status, userId: user.id, approvalCodeHash: null }, new Date(T0 + MINUTE)),
          ),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        const decided = await logins.get(row.id);
        expect(decided?.status).toBe(results[0] || results[2] ? 'approved' : 'denied');
        expect(decided).toMatchObject({ user_id: user.id, decided_at: iso(T0 + MINUTE) });

        const late = loginRow();
        await logins.insert(late);
        const decision = { status: 'approved' as const, userId: user.id, approvalCodeHash: null };
        expect(await logins.decide(late.id, decision, new Date(T0 + 10 * MINUTE))).toBe(false);
      });

      test('markExchanged: exactly one of many concurrent exchanges wins, only after approval', async () => {
        const logins = new LoginsRepo(store.db);
        const user = await ensureUser(store, uniqueEmail());
        const row = loginRow();
        await logins.insert(row);
        const at = new Date(T0 + MINUTE);
        expect(await logins.markExchanged(row.id, at)).toBe(false); // still pending
        await logins.decide(row.id, { status: 'approved', userId: user.id, approvalCodeHash: 'ach' }, at);
        const wins = await Promise.all(Array.from({ length: 6 }, () => logins.markExchanged(row.id, at)));
        expect(wins.filter(Boolean)).toHaveLength(1);
        expect(await logins.get(row.id)).toMatchObject({ status: 'exchanged', approval_code_hash: null });
      });

      test('deleteExpired forgets only logins that expired before the cut-off', async () => {
        const logins = new LoginsRepo(store.db);
        const old = loginRow({ expires_at: iso(T0 - MINUTE) });
        const alive = loginRow();
        await logins.insert(old);
        await logins.insert(alive);
        await logins.deleteExpired(iso(T0));
        expect(await logins.get(old.id)).toBeUndefined();
        expect(await logins.get(alive.id)).toEqual(alive);
      });
    });

    describe('signing keys', () => {
      const signingRow = (
        kid: string,
        createdAt: number,
        retiredAt: number | null = null,
      ): SigningKeyRow => ({
        kid,
        alg: 'Ed25519',
        public_jwk: '{"kty":"OKP"}',
        private_jwk: 'wrapped',
        created_at: iso(createdAt),
        retired_at: retiredAt === null ? null : iso(retiredAt),
      });

      test('listCurrent, listLive, retireAllExcept, retireSome and deleteRetiredBefore', async () => {
        // a database of its own: signing keys are global, not per user
        const s = await openAnother();
        await s.db.deleteFrom('signing_keys').execute();
        const repo = new SigningKeysRepo(s.db);
        const current = async () => (await repo.listCurrent()).map((k) => k.kid);
        expect(await current()).toEqual([]);
        await repo.insert(signingRow('k1', T0));
        await repo.insert(signingRow('k2', T0 + MINUTE));
        await repo.insert(signingRow('k0', T0 - 120 * MINUTE, T0 - 90 * MINUTE));
        expect(await current()).toEqual(['k2', 'k1']);
        await repo.retireAllExcept('k2', iso(T0 + 2 * MINUTE));
        expect(await current()).toEqual(['k2']);
        const live = await repo.listLive(iso(T0 - 60 * MINUTE));
        expect(live.map((k) => k.kid)).toEqual(['k2', 'k1']);
        expect(live[1]?.retired_at).toBe(iso(T0 + 2 * MINUTE));
        await repo.deleteRetiredBefore(iso(T0));
        const all = await s.db.selectFrom('signing_keys').select('kid').orderBy('kid').execute();
        expect(all.map((k) => k.kid)).toEqual(['k1', 'k2']);
        // by kid, or by age: a current key created before the bound
        await repo.insert(signingRow('k3', T0 + 3 * MINUTE));
        await repo.insert(signingRow('k4', T0 + 4 * MINUTE));
        await repo.retireSome(['k4'], iso(T0 + 2 * MINUTE), iso(T0 + 5 * MINUTE));
        expect(await current()).toEqual(['k3']);
        await s.db.deleteFrom('signing_keys').execute();
      });

      test('withSigningKeyLock serialises instances: concurrent "create if missing" makes one key', async () => {
        // PostgreSQL: two pools, as two instances have. SQLite: one store; a second one in this same
        // process would wait for the file lock synchronously, blocking the holder's event loop.
        const a = engine.name === 'postgres' ? await openAnother() : store;
        const b = engine.name === 'postgres' ? await openAnother() : store;
        await a.db.deleteFrom('signing_keys').execute();
        let n = 0;
        const createIfMissing = (s: Store) =>
          withSigningKeyLock(s, async (repo) => {
            const [current] = await repo.listCurrent();
            if (current) return current.kid;
            // widen the race window: without the lock, the other instance would also see no key
            await new Promise((r) => setTimeout(r, 30));
            const kid = `kid-${++n}`;
            await repo.insert(signingRow(kid, T0));
            return kid;
          });
        const kids = await Promise.all([a, b, a, b].map(createIfMissing));
        expect(new Set(kids).size).toBe(1);
        expect(await a.db.selectFrom('signing_keys').select('kid').execute()).toHaveLength(1);
        await a.db.deleteFrom('signing_keys').execute();
      });
    });

    describe('API keys over HTTP', () => {
      let server: TestServer;
      let admin: { apiKey: string; keyId: string; userId: string };
      let adminEmail: string;

      beforeAll(async () => {
        server = await startTestServer({ store });
        adminEmail = uniqueEmail();
        admin = await server.seedKey({ email: adminEmail });
      });
      afterAll(async () => {
        await server?.close();
      });

      const call = (
        method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
        url: string,
        key: string,
        payload?: object,
      ) =>
        server.app.inject({ method, url, headers: { 'xi-api-key': key }, ...(payload ? { payload } : {}) });

      test('/v1/me names the user and the key', async () => {
        const res = await call('GET', '/v1/me', admin.apiKey);
        expect(res.statusCode).toBe(200);
        expect(res.json()).toEqual({
          user: { id: admin.userId, email: adminEmail },
          auth: { type: 'api_key', key_id: admin.keyId, scopes: ['read', 'write', 'admin'] },
          // issue 12: the key's organization (the creator's role there) and project
          org: { id: expect.stringMatching(/^org_/), name: `${adminEmail}'s organization`, role: 'owner' },
          project: { id: expect.stringMatching(/^proj_/), name: 'default' },
        });
        expect(res.headers['x-breeze-api-key-id']).toBe(admin.keyId);
      });

      test('create, list (newest first, paginated, filtered), patch', async () => {
        const created: ApiKeyInfo[] = [];
        for (const name of ['one', 'two', 'three']) {
          const res = await call('POST', '/v1/api-keys', admin.apiKey, { name, scopes: ['write'] });
          expect(res.statusCode).toBe(201);
          const body = res.json();
          expect(body.api_key).toMatch(/^brz_[0-9A-Za-z]{46}$/);
          expect(body).toMatchObject({
            name,
            scopes: ['read', 'write'],
            status: 'active',
            created_via: 'api',
          });
          created.push(body);
          // distinct milliseconds: ids order by creation time
          await new Promise((r) => setTimeout(r, 3));
        }
        const newest = created.map((k) => k.key_id).reverse();

        const first = await call('GET', '/v1/api-keys?limit=2', admin.apiKey);
        const firstBody = first.json() as KeyListResponse;
        expect(firstBody.data.map((k) => k.key_id)).toEqual(newest.slice(0, 2));
        expect(firstBody.next_cursor).toEqual(expect.any(String));
        const second = await call(
          'GET',
          `/v1/api-keys?limit=2&cursor=${firstBody.next_cursor}`,
          admin.apiKey,
        );
        const secondBody = second.json() as KeyListResponse;
        expect(secondBody.data.map((k) => k.key_id)).toEqual([newest[2], admin.keyId]);
        expect(secondBody.next_cursor).toBeNull();

        const patched = await call('PATCH', `/v1/api-keys/${newest[0]}`, admin.apiKey, { name: 'renamed' });
        expect(patched.statusCode).toBe(200);
        expect(patched.json().name).toBe('renamed');
        expect((await call('GET', `/v1/api-keys/${newest[0]}`, admin.apiKey)).json().name).toBe('renamed');
      });

      test('disable refuses the key at once, enable accepts it again, status filter follows', async () => {
        const made = (await call('POST', '/v1/api-keys', admin.apiKey, { name: 'toggle' })).json();
        const key: string = made.api_key;
        expect((await call('GET', '/v1/me', key)).statusCode).toBe(200); // now cached

        const disabled = await call('POST', `/v1/api-keys/${made.key_id}/disable`, admin.apiKey);
        expect(disabled.statusCode).toBe(200);
        expect(disabled.json()).toMatchObject({ status: 'disabled', disabled_at: expect.any(String) });
        const refused = await call('GET', '/v1/me', key);
        expect(refused.statusCode).toBe(401);
        expect(refused.json().error.code).toBe('AUTH_REQUIRED');
        const listed = (
          await call('GET', '/v1/api-keys?status=disabled', admin.apiKey)
        ).json() as KeyListResponse;
        expect(listed.data.map((k) => k.key_id)).toContain(made.key_id);

        const enabled = await call('POST', `/v1/api-keys/${made.key_id}/enable`, admin.apiKey);
        expect(enabled.json()).toMatchObject({ status: 'active', disabled_at: null });
        expect((await call('GET', '/v1/me', key)).statusCode).toBe(200);
      });

      test('rotate mints a successor and ends the old key after the grace period', async () => {
        const made = (
          await call('POST', '/v1/api-keys', admin.apiKey, {
            name: 'rot',
            scopes: ['read', 'write'] as Scope[],
          })
        ).json();
        const res = await call('POST', `/v1/api-keys/${made.key_id}/rotate`, admin.apiKey, {
          grace_period_s: 0,
        });
        expect(res.statusCode).toBe(201);
        const body = res.json();
        expect(body).toMatchObject({
          name: 'rot',
          scopes: ['read', 'write'],
          rotated_from: made.key_id,
          created_via: 'rotation',
          previous: { key_id: made.key_id, status: 'expired' },
        });
        expect((await call('GET', '/v1/me', made.api_key)).statusCode).toBe(401);
        expect((await call('GET', '/v1/me', body.api_key)).json().auth.key_id).toBe(body.key_id);
        const again = await call('POST', `/v1/api-keys/${made.key_id}/rotate`, admin.apiKey);
        expect(again.statusCode).toBe(409);
      });

      test('delete: 204, then the key is refused and gone', async () => {
        const made = (await call('POST', '/v1/api-keys', admin.apiKey, { name: 'doomed' })).json();
        expect((await call('GET', '/v1/me', made.api_key)).statusCode).toBe(200);
        const res = await call('DELETE', `/v1/api-keys/${made.key_id}`, admin.apiKey);
        expect(res.statusCode).toBe(204);
        expect((await call('GET', '/v1/me', made.api_key)).statusCode).toBe(401);
        expect((await call('GET', `/v1/api-keys/${made.key_id}`, admin.apiKey)).statusCode).toBe(404);
      });
    });
  });
}
