import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { Database as Schema } from './schema.js';
import { BaseStore } from './store.js';

export class SqliteStore extends BaseStore {
  readonly engine = 'sqlite' as const;
}

/**
 * Opens (creating if needed) the SQLite database at `file`, in WAL mode, and migrates it. Several
 * processes may share the file (the CLI's embedded server and `breeze serve`): writers wait on
 * `busy_timeout` rather than failing.
 */
export async function openSqliteStore(file: string): Promise<SqliteStore> {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const sqlite = new Database(file);
  sqlite.pragma('journal_mode = WAL');
  // NORMAL is durable across a process crash (SIGKILL); only power loss may drop the last commits.
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  if (file !== ':memory:') {
    try {
      chmodSync(file, 0o600);
    } catch {
      // not ours to fix (e.g. a read-only mount); the directory is 0700 anyway
    }
  }
  const store = new SqliteStore(new Kysely<Schema>({ dialect: new SqliteDialect({ database: sqlite }) }));
  await store.migrate();
  return store;
}
