import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { displayPrefix, generateApiKey } from '../../src/core/api-key.js';
import { createSecretHasher } from '../../src/core/hash.js';
import { newKeyId, newUserId } from '../../src/core/ids.js';
import type { ApiKeyInfo, MeResponse } from '../../src/core/types.js';
import { openStore, type Store } from '../../src/server/store/index.js';
import { migrationsUpTo } from '../../src/server/store/migrations.js';
import { postgresAvailability, startPostgres, type TestPostgres, uniqueDbName } from '../helpers/postgres.js';
import { requirePart } from '../helpers/require.js';
import { startTestServer } from '../helpers/server.js';

/**
 * Issue 12: a database made by the release before organizations (migrations up to
 * 002_api_keys_rotated_at, the last one on main before 003_teams) is opened by the new code: every
 * user gets a personal organization (owner) with project `default`, every key lands there, and
 * every key still authenticates — on SQLite and PostgreSQL.
 */

const LAST_BEFORE_TEAMS = '002_api_keys_rotated_at';
const PEPPER = Buffer.from('test-pepper'); // startTestServer's
const hasher = createSecretHasher(PEPPER);

const pgAvail = postgresAvailability();
const skipPostgres = requirePart('PostgreSQL', pgAvail.available, pgAvail.why);
let pgServer: TestPostgres | undefined;
afterAll(async () => {
  await pgServer?.stop();
});

interface Seeded {
  users: { id: string; email: string }[];
  keys: { id: string; userId: string; apiKey: string; scopes: string }[];
}

// biome-ignore lint/suspicious/noExplicitAny: the old schema, not the current one
async function buildOldDatabase(db: Kysely<any>): Promise<Seeded> {
  const { error } = await new Migrator({ db, provider: migrationsUpTo(LAST_BEFORE_TEAMS) }).migrateToLatest();
  if (error) throw error;
  const tables = (await db.introspection.getTables()).map((t) => t.name);
  expect(tables).not.toContain('organizations');
  const seeded: Seeded = { users: [], keys: [] };
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  for (let u = 0; u < 3; u++) {
    const user = {
      id: newUserId(t0 + u),
      email: `old${u}@example.com`,
      created_at: new Date(t0 + u).toISOString(),
    };
    await db.insertInto('users').values(user).execute();
    seeded.users.push(user);
    for (let k = 0; k < 2; k++) {
      const apiKey = generateApiKey();
      const id = newKeyId(t0 + u * 10 + k);
      const scopes = k === 0 ? 'read write admin' : 'read';
      await db
        .insertInto('api_keys')
        .values({
          id,
          user_id: user.id,
          name: `old ${u}.${k}`,
          prefix: displayPrefix(apiKey),
          hash: hasher(apiKey),
          scopes,
          created_at: new Date(t0 + u * 10 + k).toISOString(),
          expires_at: null,
          last_used_at: null,
          disabled_at: null,
          rotated_from: null,
          rotated_at: null,
          created_via: 'api',
        })
        .execute();
      seeded.keys.push({ id, userId: user.id, apiKey, scopes });
    }
  }
  return seeded;
}

async function checkMigrated(store: Store, seeded: Seeded): Promise<void> {
  const server = await startTestServer({ store });
  try {
    for (const user of seeded.users) {
      const orgs = await store.orgs.listForUser(user.id);
      expect(orgs).toEqual([
        {
          id: expect.stringMatching(/^org_/),
          name: `${user.email}'s organization`,
          role: 'owner',
          created_at: expect.any(String),
        },
      ]);
      const projects = await store.orgs.listProjects(orgs[0]?.id ?? '');
      expect(projects.map((p) => p.name)).toEqual(['default']);
    }
    for (const key of seeded.keys) {
      const me = await server.app.inject({
        method: 'GET',
        url: '/v1/me',
        headers: { 'xi-api-key': key.apiKey },
      });
      expect(me.statusCode, me.body).toBe(200);
      const body = me.json() as MeResponse;
      expect(body.user.id).toBe(key.userId);
      expect(body.auth.scopes.join(' ')).toBe(key.scopes);
      expect(body.org?.role).toBe('owner');
      expect(body.project?.name).toBe('default');
      const read = await server.app.inject({
        method: 'GET',
        url: `/v1/api-keys/${key.id}`,
        headers: { 'xi-api-key': key.apiKey },
      });
      expect(read.statusCode).toBe(200);
      const info = read.json() as ApiKeyInfo;
      expect(info).toMatchObject({
        org_id: body.org?.id,
        project_id: body.project?.id,
        created_by: key.userId,
      });
    }
    // a new user after the migration gets one too, through the same path
    const fresh = await store.users.ensure('new@example.com');
    expect((await store.orgs.listForUser(fresh.id)).map((o) => o.role)).toEqual(['owner']);
  } finally {
    await server.close();
  }
}

describe('migration 003_teams from a database of the previous release', () => {
  test('SQLite: users get personal orgs, keys land in `default` and still authenticate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'breeze-teams-mig-'));
    try {
      const sqlite = new Database(join(dir, 'breeze.db'));
      sqlite.pragma('foreign_keys = ON');
      const old = new Kysely({ dialect: new SqliteDialect({ database: sqlite }) });
      const seeded = await buildOldDatabase(old);
      await old.destroy();
      const store = await openStore({ dataDir: dir });
      try {
        await checkMigrated(store, seeded);
      } finally {
        await store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.skipIf(skipPostgres)('PostgreSQL: the same', async () => {
    pgServer ??= await startPostgres();
    const url = await pgServer.createDatabase(uniqueDbName('teams_mig'));
    const old = new Kysely({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url }) }),
    });
    const seeded = await buildOldDatabase(old);
    await old.destroy();
    const store = await openStore({ databaseUrl: url });
    try {
      await checkMigrated(store, seeded);
    } finally {
      await store.close();
    }
  });
});
