import { type Kysely, sql } from 'kysely';
import type { Database, Engine, KeyEventsTable } from './schema.js';

export type KeyEventRow = Omit<KeyEventsTable, 'id'> & { id: number };

export type RevocationReason =
  | 'disabled'
  | 'deleted'
  | 'narrowed'
  | 'expired'
  | 'member_removed'
  | 'role_changed';

export interface NewKeyEvent {
  org_id: string;
  key_id: string;
  reason: RevocationReason;
  dedupe?: string;
}

/** An arbitrary constant: the advisory lock that orders `key_events` writers on PostgreSQL. */
const EVENTS_LOCK = 0x6b657976;

/**
 * The durable revocation log behind `GET /v1/keys/events`. `append` must run inside the
 * transaction of the change it records: on PostgreSQL it first takes a transaction-scoped advisory
 * lock, so ids are handed out in commit order and a reader that has seen id N can never later find
 * a row below N (sequences alone would allow that between concurrent transactions).
 */
export class KeyEventsRepo {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly engine: () => Engine,
  ) {}

  /** Appends events; those whose `dedupe` already exists are skipped. Returns the rows written. */
  async append(events: readonly NewKeyEvent[], at: string): Promise<KeyEventRow[]> {
    if (events.length === 0) return [];
    if (this.engine() === 'postgres')
      await sql`select pg_advisory_xact_lock(${EVENTS_LOCK})`.execute(this.db);
    const written: KeyEventRow[] = [];
    for (const e of events) {
      const row = await this.db
        .insertInto('key_events')
        .values({
          org_id: e.org_id,
          key_id: e.key_id,
          type: 'key.revoked',
          reason: e.reason,
          created_at: at,
          dedupe: e.dedupe ?? null,
        })
        .onConflict((oc) => oc.column('dedupe').doNothing())
        .returningAll()
        .executeTakeFirst();
      if (row) written.push(row as KeyEventRow);
    }
    return written;
  }

  /** Events of every organization after `id`, oldest first (the live fan-out of one instance). */
  since(id: number, limit: number): Promise<KeyEventRow[]> {
    return this.db
      .selectFrom('key_events')
      .selectAll()
      .where('id', '>', id)
      .orderBy('id')
      .limit(limit)
      .execute() as Promise<KeyEventRow[]>;
  }

  /** Events of one organization after `id`, oldest first (a stream's `Last-Event-ID` replay). */
  after(orgId: string, id: number, limit: number): Promise<KeyEventRow[]> {
    return this.db
      .selectFrom('key_events')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('id', '>', id)
      .orderBy('id')
      .limit(limit)
      .execute() as Promise<KeyEventRow[]>;
  }

  async maxId(): Promise<number> {
    const row = await this.db
      .selectFrom('key_events')
      .select((eb) => eb.fn.max('id').as('max'))
      .executeTakeFirst();
    return Number(row?.max ?? 0);
  }

  /** Drops events older than `before` (resuming that far back replays what is left). */
  async prune(before: string): Promise<number> {
    const res = await this.db.deleteFrom('key_events').where('created_at', '<', before).executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  /** Usable keys whose expiry fell in (`from`, `to`]: the expiry watcher's question. */
  expiredBetween(
    from: string,
    to: string,
  ): Promise<{ id: string; org_id: string | null; expires_at: string | null }[]> {
    return this.db
      .selectFrom('api_keys')
      .select(['id', 'org_id', 'expires_at'])
      .where('expires_at', '>', from)
      .where('expires_at', '<=', to)
      .where('disabled_at', 'is', null)
      .execute();
  }

  /** Keys one member created in an organization, with their own scopes (to see which a role change narrows). */
  keysByCreator(orgId: string, userId: string): Promise<{ id: string; scopes: string }[]> {
    return this.db
      .selectFrom('api_keys')
      .select(['id', 'scopes'])
      .where('org_id', '=', orgId)
      .where('user_id', '=', userId)
      .orderBy('id')
      .execute();
  }
}
