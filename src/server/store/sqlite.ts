import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, type KyselyConfig, type SqliteDatabase, SqliteDialect } from 'kysely';
import { GroupCommit } from './group-commit.js';
import type { DirectSql } from './prepared.js';
import type { Database as Schema } from './schema.js';
import { BaseStore, type StoreTx } from './store.js';
import { WalCheckpointer } from './wal-checkpointer.js';

/** Prepared statements kept per SQLite store (distinct SQL texts: a few hundred at most in practice). */
const STATEMENT_CACHE_SIZE = 500;

interface KeptStatements extends SqliteDatabase {
  prepare(text: string): Database.Statement;
}

/**
 * The database as Kysely's SqliteDialect sees it, keeping prepared statements: Kysely prepares every
 * query anew, and preparing (parsing and planning the SQL) costs about as much as running a simple
 * statement. A statement is only ever used by one query at a time (Kysely runs one query at a time
 * on SQLite's single connection, a stream holding it to the end), and SQLite re-prepares a kept
 * statement by itself after a schema change. Past STATEMENT_CACHE_SIZE texts, the oldest goes.
 */
export function keepingStatements(sqlite: Database.Database, size = STATEMENT_CACHE_SIZE): KeptStatements {
  const statements = new Map<string, Database.Statement>();
  return {
    prepare(text: string) {
      let statement = statements.get(text);
      if (statement === undefined) {
        statement = sqlite.prepare(text);
        if (statements.size >= size) statements.delete(statements.keys().next().value as string);
        statements.set(text, statement);
      }
      return statement;
    },
    close() {
      sqlite.close();
    },
  };
}

const TEMP_IN_MEMORY = 'temp_store = MEMORY';

export class SqliteStore extends BaseStore {
  readonly engine = 'sqlite' as const;
  private readonly groups: GroupCommit;
  /** undefined with a query log hook: every statement then goes through Kysely, which logs it */
  private readonly direct: DirectSql | undefined;
  /** checkpoints the WAL off the server's thread once writes come steadily (not for `:memory:`) */
  readonly checkpointer: WalCheckpointer | undefined;

  /** `log` is Kysely's query log hook (tests use it to compare the work two requests do). */
  constructor(
    private readonly sqlite: Database.Database,
    options: Pick<KyselyConfig, 'log'> = {},
  ) {
    const statements = keepingStatements(sqlite);
    super(new Kysely<Schema>({ dialect: new SqliteDialect({ database: statements }), ...options }));
    this.direct = options.log
      ? undefined
      : {
          run: (text, params) => {
            statements.prepare(text).run(params);
          },
          get: <R>(text: string, params: readonly unknown[]) =>
            statements.prepare(text).get(params) as R | undefined,
        };
    // The savepoints of a group (see GroupCommit) keep the pages each member changes in a
    // sub-journal, which SQLite spills to a temporary file past 64 KiB: a group of key creations
    // created, wrote and deleted a file in /var/tmp about every other commit (~10% of the
    // throughput). In memory it is a copy of the few pages a group touches. (Migrations, which may
    // sort a whole table to build an index, keep SQLite's temporary files: see migrate.)
    sqlite.pragma(TEMP_IN_MEMORY);
    const checkpointer = sqlite.memory ? undefined : new WalCheckpointer(sqlite);
    this.checkpointer = checkpointer;
    this.groups = new GroupCommit(
      this.db,
      () => sqlite.inTransaction,
      (db) => this.boundTo(db),
      checkpointer ? () => checkpointer.committed() : undefined,
    );
  }

  /** The group's transaction holds the connection: a direct statement runs inside it. */
  protected override directInTransaction(): DirectSql | undefined {
    return this.direct;
  }

  override async close(): Promise<void> {
    await this.checkpointer?.stop();
    await super.close();
  }

  /** Transactions that arrive together commit together (see GroupCommit). */
  override transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.groups.run(fn);
  }

  /**
   * Kysely's SQLite migrator takes no lock and no transaction, so two processes opening a fresh data
   * dir at once (two CLI commands, or the CLI and `breeze serve`) would both create the tables. Run
   * it inside BEGIN IMMEDIATE on the one connection Kysely uses: the second process waits for the
   * write lock (busy_timeout), then finds every migration applied; a failed migration rolls back whole.
   */
  override async migrate(): Promise<void> {
    // an index built over a large table sorts it: in temporary files, as SQLite does by default,
    // not in this process's memory
    this.sqlite.pragma('temp_store = DEFAULT');
    this.sqlite.exec('BEGIN IMMEDIATE');
    try {
      await super.migrate();
      this.sqlite.exec('COMMIT');
    } catch (err) {
      if (this.sqlite.inTransaction) this.sqlite.exec('ROLLBACK');
      throw err;
    } finally {
      this.sqlite.pragma(TEMP_IN_MEMORY);
    }
  }
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
  const store = new SqliteStore(sqlite);
  try {
    await store.migrate();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}
