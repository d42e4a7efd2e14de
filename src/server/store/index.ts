import { join } from 'node:path';
import type { Store } from './store.js';

export type { Engine } from './schema.js';
export type { Store, StoreTx } from './store.js';

export interface StoreLocation {
  /** SQLite: `<dataDir>/breeze.db` */
  dataDir?: string;
  /** PostgreSQL connection URL; wins over dataDir */
  databaseUrl?: string;
}

export const SQLITE_FILE = 'breeze.db';

/** Opens the store the options point at; heavy drivers are imported only when used. */
export async function openStore(loc: StoreLocation): Promise<Store> {
  if (loc.databaseUrl) {
    const { openPostgresStore } = await import('./postgres.js');
    return openPostgresStore(loc.databaseUrl);
  }
  if (!loc.dataDir) throw new Error('openStore needs a dataDir or a databaseUrl');
  const { openSqliteStore } = await import('./sqlite.js');
  return openSqliteStore(join(loc.dataDir, SQLITE_FILE));
}
