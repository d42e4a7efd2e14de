import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/server/store/sqlite.js';
import { requirePart } from '../helpers/require.js';
import { distReady, ROOT } from '../reliability/server-process.js';

/**
 * SQLite's group commit (store/group-commit.ts): transactions arriving together share one commit,
 * and each caller still sees its own transaction, committed or rolled back whole.
 */
describe('SQLite group commit', () => {
  let dir: string;
  let file: string;
  let store: SqliteStore;
  let log: string[];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'breeze-group-commit-'));
    file = join(dir, 'breeze.db');
    log = [];
    const db = new BetterSqlite3(file);
    db.pragma('journal_mode = WAL');
    store = new SqliteStore(db, { log: (e) => void log.push(e.query.sql) });
    await store.migrate();
    log = [];
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const addUser = (email: string) =>
    store.transaction(async (tx) => {
      await tx.users.ensure(email);
      return email;
    });
  const stored = () => {
    // a second connection: sees only what is committed
    const other = new BetterSqlite3(file, { readonly: true });
    try {
      return (other.prepare('select email from users order by email').all() as { email: string }[]).map(
        (r) => r.email,
      );
    } finally {
      other.close();
    }
  };
  const commits = () => log.filter((q) => q === 'commit').length;

  it('a transaction alone runs as before: begin, its statements, commit, no savepoint', async () => {
    await addUser('alone@example.com');
    // IMMEDIATE: the write lock from the start (a deferred BEGIN would fail a write whose snapshot
    // another process has moved past)
    expect(log[0]).toBe('begin immediate');
    expect(log.at(-1)).toBe('commit');
    expect(log.some((q) => q.includes('savepoint'))).toBe(false);
    expect(stored()).toEqual(['alone@example.com']);
  });

  it('transactions arriving together share commits, and each is answered only once it is committed', async () => {
    const emails = Array.from({ length: 20 }, (_, i) => `u${String(i).padStart(2, '0')}@example.com`);
    const seenAtAnswer: number[] = [];
    await Promise.all(
      emails.map((e) =>
        addUser(e).then(() => {
          // what another process sees the moment this caller hears "done"
          expect(stored()).toContain(e);
          seenAtAnswer.push(1);
        }),
      ),
    );
    expect(seenAtAnswer).toHaveLength(20);
    expect(stored()).toEqual(emails);
    expect(commits()).toBeLessThan(5);
  });

  it('a failing transaction in a group is rolled back alone; the others commit', async () => {
    const results = await Promise.allSettled([
      addUser('a@example.com'),
      store.transaction(async (tx) => {
        await tx.users.ensure('doomed@example.com');
        throw new Error('refused by the caller');
      }),
      addUser('b@example.com'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((results[1] as PromiseRejectedResult).reason)).toContain('refused by the caller');
    expect(stored()).toEqual(['a@example.com', 'b@example.com']);
    expect(commits()).toBe(1);
  });

  it('the first transaction of a group failing leaves the next ones unharmed', async () => {
    const results = await Promise.allSettled([
      store.transaction(async (tx) => {
        await tx.users.ensure('doomed@example.com');
        throw new Error('first fails');
      }),
      addUser('next@example.com'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);
    expect(stored()).toEqual(['next@example.com']);
  });

  it('when the database ends the transaction itself, no member before it is told it committed', async () => {
    const results = await Promise.allSettled([
      addUser('lost@example.com'),
      store.transaction(async (tx) => {
        // what SQLite does on a full disk or an I/O error: the whole transaction is gone
        await sql`rollback`.execute(tx.db);
        throw new Error('disk full');
      }),
      addUser('after@example.com'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
    // the other caller's failure is not theirs to answer: a server error, with it as the cause
    const lost = (results[0] as PromiseRejectedResult).reason as Error;
    expect(lost.message).toBe('the database ended the transaction this write was part of');
    expect(String(lost.cause)).toContain('disk full');
    expect(String((results[1] as PromiseRejectedResult).reason)).toContain('disk full');
    expect(stored()).toEqual(['after@example.com']);
  });

  it('a function that carries on after the database ended its transaction fails, and so do the members before it', async () => {
    const results = await Promise.allSettled([
      addUser('first@example.com'),
      store.transaction(async (tx) => {
        await sql`rollback`.execute(tx.db);
        // as if it had caught the error and gone on: this statement commits on its own
        return 'done';
      }),
      addUser('third@example.com'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'fulfilled']);
    expect(String((results[1] as PromiseRejectedResult).reason)).toContain('ended the transaction');
    expect(stored()).toEqual(['third@example.com']);
    // and the connection is never left inside a transaction: a plain write afterwards is durable
    await store.users.ensure('plain@example.com');
    expect(stored()).toContain('plain@example.com');
  });

  it('members never interleave, even when one waits on I/O in the middle', async () => {
    const trace: string[] = [];
    const member = (name: string) =>
      store.transaction(async (tx) => {
        trace.push(`${name} start`);
        await tx.users.ensure(`${name}@example.com`);
        await new Promise((r) => setTimeout(r, 5));
        await tx.users.ensure(`${name}2@example.com`);
        trace.push(`${name} end`);
      });
    await Promise.all([member('x'), member('y'), member('z')]);
    expect(trace).toEqual(['x start', 'x end', 'y start', 'y end', 'z start', 'z end']);
    expect(stored()).toHaveLength(6);
  });

  it('a second connection of the same process writing meanwhile is never blocked by a group', async () => {
    // its wait for the write lock (busy_timeout) blocks the thread: a group holding the lock across
    // a turn of the event loop would then never commit, and both would stall for the timeout
    const db2 = new BetterSqlite3(file);
    db2.pragma('busy_timeout = 5000');
    const store2 = new SqliteStore(db2);
    try {
      const t0 = Date.now();
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < 10; i++) {
        writes.push(addUser(`one${i}@example.com`));
        writes.push(store2.transaction((tx) => tx.users.ensure(`two${i}@example.com`)));
        await new Promise((r) => setTimeout(r, 1));
      }
      await Promise.all(writes);
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(stored()).toHaveLength(20);
    } finally {
      await store2.close();
    }
  });

  it.skipIf(requirePart('dist build', distReady, 'dist/server/serve.js is missing (the build failed?)'))(
    'a group writes no temporary file, however many pages its members change',
    async () => {
      // SQLite picks its temporary directory once, when the library starts: a process of its own,
      // pointed at an empty directory that is watched for any file appearing, even briefly
      const temp = mkdtempSync(join(tmpdir(), 'breeze-group-temp-'));
      const seen: string[] = [];
      const watcher = watch(temp, (_event, name) => {
        if (name) seen.push(name);
      });
      const sqliteJs = pathToFileURL(join(ROOT, 'dist/server/store/sqlite.js')).href;
      const script = `
        const { openSqliteStore } = await import(${JSON.stringify(sqliteJs)});
        const store = await openSqliteStore(${JSON.stringify(join(dir, 'child.db'))});
        for (let round = 0; round < 20; round++) {
          const members = [];
          for (let i = 0; i < 40; i++)
            members.push(store.transaction((tx) => tx.users.ensure('u' + round + '-' + i + '-' + 'x'.repeat(200) + '@example.com')));
          await Promise.all(members);
        }
        await store.close();`;
      try {
        const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
          env: { ...process.env, SQLITE_TMPDIR: temp, TMPDIR: temp },
          encoding: 'utf8',
          timeout: 60_000,
        });
        expect(child.stderr).toBe('');
        expect(child.status).toBe(0);
        await new Promise((r) => setTimeout(r, 100));
        // 800 users in groups of 40, each member in a savepoint: the sub-journal outgrows 64 KiB
        expect(seen).toEqual([]);
        expect(readdirSync(temp)).toEqual([]);
      } finally {
        watcher.close();
        rmSync(temp, { recursive: true, force: true });
      }
    },
  );
});
