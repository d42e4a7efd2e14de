import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';
import { BaseStore } from './store.js';

export class PostgresStore extends BaseStore {
  readonly engine = 'postgres' as const;
}

/** Opens a pooled PostgreSQL store and migrates it (Kysely holds an advisory lock while migrating). */
export async function openPostgresStore(url: string): Promise<PostgresStore> {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  const store = new PostgresStore(new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }));
  await store.migrate();
  return store;
}
