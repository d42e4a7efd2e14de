import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openSqliteStore, type SqliteStore } from '../../src/server/store/sqlite.js';
import {
  CHECKPOINTER_AFTER_COMMITS,
  FALLBACK_CHECKPOINT_PAGES,
} from '../../src/server/store/wal-checkpointer.js';

/**
 * store/wal-checkpointer.ts: once commits come steadily, the WAL's pages reach the database file
 * through a second connection on a thread of its own, not through the server's thread; SQLite's
 * own checkpoint stays as the fallback, and closing the store stops the thread.
 */
describe('SQLite WAL checkpoints on their own thread', () => {
  let dir: string;
  let file: string;
  let store: SqliteStore;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'breeze-checkpointer-'));
    file = join(dir, 'breeze.db');
    store = await openSqliteStore(file);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const addUser = (email: string) => store.transaction((tx) => tx.users.ensure(email));
  const autocheckpoint = async () =>
    (await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(store.db)).rows[0]
      ?.wal_autocheckpoint;
  const inDatabaseFile = (text: string) => readFileSync(file).includes(Buffer.from(text));

  it('a few commits (a CLI command) start no thread, and SQLite checkpoints as it always did', async () => {
    for (let i = 0; i < 10; i++) await addUser(`few-${i}@example.com`);
    await new Promise((r) => setTimeout(r, 200));
    expect(store.checkpointer?.active).toBe(false);
    expect(await autocheckpoint()).toBe(1000);
  });

  it('after steady commits, committed pages reach the database file without waiting for 1,000 pages', async () => {
    // one commit each: a few pages of WAL apiece, together far below SQLite's own threshold
    for (let i = 0; i < CHECKPOINTER_AFTER_COMMITS; i++) await addUser(`steady-${i}@example.com`);
    await vi.waitFor(() => expect(store.checkpointer?.active).toBe(true), { timeout: 10_000 });
    expect(await autocheckpoint()).toBe(FALLBACK_CHECKPOINT_PAGES);

    const marker = `marker-${Date.now()}@example.com`;
    await addUser(marker);
    // the commit is in the WAL; a checkpoint copies it into the database file, and only the
    // thread's can have run (the server's connection checkpoints at 4,000 pages)
    await vi.waitFor(() => expect(inDatabaseFile(marker)).toBe(true), { timeout: 5000, interval: 20 });
    expect(await store.users.findByEmail(marker)).toBeDefined();
  });

  it('a write outside any transaction reaches the database file too (the thread also looks every second)', async () => {
    for (let i = 0; i < CHECKPOINTER_AFTER_COMMITS; i++) await addUser(`plain-${i}@example.com`);
    await vi.waitFor(() => expect(store.checkpointer?.active).toBe(true), { timeout: 10_000 });
    const marker = `plain-marker-${Date.now()}@example.com`;
    // an autocommit statement, not a group's transaction: no commit is counted for the thread
    await store.users.ensure(marker);
    await vi.waitFor(() => expect(inDatabaseFile(marker)).toBe(true), { timeout: 5000, interval: 50 });
  });

  it('closing the store stops the thread at once and closes its connection', async () => {
    for (let i = 0; i < CHECKPOINTER_AFTER_COMMITS; i++) await addUser(`close-${i}@example.com`);
    await vi.waitFor(() => expect(store.checkpointer?.active).toBe(true), { timeout: 10_000 });
    expect(existsSync(`${file}-wal`)).toBe(true);
    const started = performance.now();
    await store.close();
    // the thread left on its own (not terminated after close()'s 2 s wait)
    expect(performance.now() - started).toBeLessThan(1500);
    expect(store.checkpointer?.hasThread).toBe(false);
    // SQLite deletes the WAL when its last connection closes: had the thread's connection stayed
    // open, the WAL would still be there
    expect(existsSync(`${file}-wal`)).toBe(false);
    store = await openSqliteStore(file);
  });
});
