import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { expect, it } from 'vitest';
import { openStore } from '../../src/server/store/index.js';
import { migrationsUpTo } from '../../src/server/store/migrations.js';

/**
 * Migration 009 (SQLite): the audit log becomes one table clustered on (org_id, id), WITHOUT ROWID.
 * A log written by the release before keeps every event, listing and pruning work on it, and new
 * events go into the same table.
 */
it('an audit log from before 009 keeps its events in the clustered table, and lists and prunes there', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'breeze-audit-009-'));
  try {
    const file = join(dir, 'breeze.db');
    // biome-ignore lint/suspicious/noExplicitAny: the old schema, not the current one
    const old = new Kysely<any>({ dialect: new SqliteDialect({ database: new Database(file) }) });
    const { error } = await new Migrator({
      db: old,
      provider: migrationsUpTo('008_leaks'),
    }).migrateToLatest();
    if (error) throw error;
    const event = (org: string, id: string, at: string) => ({
      id,
      at,
      org_id: org,
      project_id: null,
      action: 'key.created',
      actor_type: 'user',
      actor_id: 'usr_1',
      actor_email: 'a@example.com',
      actor_key_id: null,
      target_type: 'key',
      target_id: 'key_1',
      target_owner_id: 'usr_1',
      ip: '127.0.0.1',
      user_agent: 'curl/8',
      request_id: 'req_1',
      details: '{"name":"n"}',
    });
    // ids are evt_ + ULID: the first 10 characters after evt_ are the time
    await old
      .insertInto('audit_events')
      .values([
        event('org_A', 'evt_01AAAAAAAA0000000000000001', '2020-01-01T00:00:00.000Z'),
        event('org_B', 'evt_01AAAAAAAA0000000000000002', '2020-01-01T00:00:00.000Z'),
        event('org_A', 'evt_01M8RETEX60000000000000003', '2026-12-01T00:00:00.000Z'),
      ])
      .execute();
    await old.destroy();

    const store = await openStore({ dataDir: dir });
    try {
      const look = new Database(file, { readonly: true });
      const { sql } = look.prepare("select sql from sqlite_master where name = 'audit_events'").get() as {
        sql: string;
      };
      // one tree: no index of its own beside it
      const indexes = look
        .prepare("select name from sqlite_master where type = 'index' and tbl_name = 'audit_events'")
        .all();
      look.close();
      expect(sql.toLowerCase()).toContain('without rowid');
      expect(sql).toMatch(/primary key \("org_id", "id"\)/i);
      expect(indexes).toEqual([]);
      const a = await store.audit.list({ orgId: 'org_A', limit: 10 });
      expect(a.map((r) => r.id)).toEqual([
        'evt_01M8RETEX60000000000000003',
        'evt_01AAAAAAAA0000000000000001',
      ]);
      expect(a[1]).toMatchObject({ user_agent: 'curl/8', details: '{"name":"n"}', target_owner_id: 'usr_1' });
      expect(await store.audit.organizationsWithEventsBefore('evt_01B')).toEqual(['org_A', 'org_B']);
      expect(await store.audit.organizationsWithEventsBefore('evt_01A')).toEqual([]);
      // the two 2020 events go, one per organization; the 2026 one stays
      let pruned = 0;
      for (const org of await store.audit.organizationsWithEventsBefore('evt_01B'))
        pruned += await store.audit.pruneBatch(org, 'evt_01B', 100);
      expect(pruned).toBe(2);
      expect((await store.audit.list({ orgId: 'org_A', limit: 10 })).map((r) => r.id)).toEqual([
        'evt_01M8RETEX60000000000000003',
      ]);
      expect(await store.audit.list({ orgId: 'org_B', limit: 10 })).toEqual([]);
      expect(await store.audit.organizationsWithEventsBefore('evt_01B')).toEqual([]);
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
