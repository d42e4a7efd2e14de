import { type Kysely, sql } from 'kysely';
import type { Database, Engine, SigningKeysTable } from './schema.js';
import type { Store } from './store.js';

export type SigningKeyRow = SigningKeysTable;

/** Any constant: the PostgreSQL advisory lock that serialises signing-key changes across instances. */
const PG_LOCK_ID = 0x62727a31; // "brz1"

/** Queries on `signing_keys`; the private half is stored as given (the JWT service encrypts it). */
export class SigningKeysRepo {
  constructor(private readonly db: Kysely<Database>) {}

  /** Every key that is current, or retired at or after `retiredSince`; newest first. */
  async listLive(retiredSince: string): Promise<SigningKeyRow[]> {
    return this.db
      .selectFrom('signing_keys')
      .selectAll()
      .where((eb) => eb.or([eb('retired_at', 'is', null), eb('retired_at', '>=', retiredSince)]))
      .orderBy('created_at', 'desc')
      .orderBy('kid', 'desc')
      .execute();
  }

  /** Every key that is not retired, newest first (several when each instance signs with its own). */
  async listCurrent(): Promise<SigningKeyRow[]> {
    return this.db
      .selectFrom('signing_keys')
      .selectAll()
      .where('retired_at', 'is', null)
      .orderBy('created_at', 'desc')
      .orderBy('kid', 'desc')
      .execute();
  }

  /** Retires the current keys among `kids`, and any current key created before `createdBefore`. */
  async retireSome(kids: readonly string[], createdBefore: string, at: string): Promise<void> {
    await this.db
      .updateTable('signing_keys')
      .set({ retired_at: at })
      .where('retired_at', 'is', null)
      .where((eb) =>
        kids.length > 0
          ? eb.or([eb('kid', 'in', kids), eb('created_at', '<', createdBefore)])
          : eb('created_at', '<', createdBefore),
      )
      .execute();
  }

  async insert(row: SigningKeyRow): Promise<void> {
    await this.db.insertInto('signing_keys').values(row).execute();
  }

  /** Retires every current key except `kid`. */
  async retireAllExcept(kid: string, at: string): Promise<void> {
    await this.db
      .updateTable('signing_keys')
      .set({ retired_at: at })
      .where('retired_at', 'is', null)
      .where('kid', '!=', kid)
      .execute();
  }

  /** Housekeeping: drops keys retired before `before` (no token they signed can still be valid). */
  async deleteRetiredBefore(before: string): Promise<void> {
    await this.db
      .deleteFrom('signing_keys')
      .where('retired_at', 'is not', null)
      .where('retired_at', '<', before)
      .execute();
  }
}

/**
 * Runs `fn` in a transaction that holds the signing-key lock, so that two instances sharing the
 * database never both create or rotate a key at once. PostgreSQL: a transaction-scoped advisory
 * lock. SQLite: `BEGIN IMMEDIATE`, which takes the write lock up front (other writers wait on
 * `busy_timeout`); a deferred transaction would upgrade later and, in WAL mode, fail with "database
 * is locked" when another process committed in between.
 */
export async function withSigningKeyLock<T>(
  store: Pick<Store, 'db'> & { engine: Engine },
  fn: (repo: SigningKeysRepo) => Promise<T>,
): Promise<T> {
  if (store.engine === 'postgres') {
    return store.db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(${PG_LOCK_ID})`.execute(trx);
      return fn(new SigningKeysRepo(trx));
    });
  }
  // SQLite has one connection per store: hold it for the whole transaction
  return store.db.connection().execute(async (conn) => {
    await sql`begin immediate`.execute(conn);
    try {
      const result = await fn(new SigningKeysRepo(conn));
      await sql`commit`.execute(conn);
      return result;
    } catch (err) {
      await sql`rollback`.execute(conn).catch(() => {});
      throw err;
    }
  });
}
