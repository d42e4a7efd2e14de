import type { Kysely } from 'kysely';
import { ulid } from '../../core/ids.js';
import type { AuditEventsTable, Database } from './schema.js';

export type AuditRow = AuditEventsTable;

/** What a listing of the audit log covers. */
export interface AuditListFilter {
  orgId: string;
  action?: string;
  /** events about this key (its target) or made with it (the actor's key) */
  keyId?: string;
  actorId?: string;
  /** inclusive lower bound on `at` (RFC 3339) */
  since?: string;
  /** only events this user may read as a plain member: they are the actor or own the target */
  visibleTo?: string;
  /** exclusive: only events with an id below this one */
  beforeId?: string;
  limit: number;
}

/** The audit log: append-only; rows leave only through the retention pruner. */
export class AuditRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(row: AuditRow): Promise<void> {
    await this.db.insertInto('audit_events').values(row).execute();
  }

  /** Newest first (ids sort by time). */
  async list(f: AuditListFilter): Promise<AuditRow[]> {
    let q = this.db.selectFrom('audit_events').selectAll().where('org_id', '=', f.orgId);
    if (f.action !== undefined) q = q.where('action', '=', f.action);
    if (f.actorId !== undefined) q = q.where('actor_id', '=', f.actorId);
    if (f.since !== undefined) {
      q = q.where('at', '>=', f.since);
      // the same bound on the id (ids begin with their event's time, in ms): the (org_id, id) index
      // then stops the scan there instead of walking the organization's whole log
      const ms = Date.parse(f.since);
      if (Number.isFinite(ms)) q = q.where('id', '>=', `evt_${ulid(Math.max(0, ms)).slice(0, 10)}`);
    }
    if (f.beforeId !== undefined) q = q.where('id', '<', f.beforeId);
    const keyId = f.keyId;
    if (keyId !== undefined) {
      q = q.where((eb) =>
        eb.or([
          eb.and([eb('target_type', '=', 'key'), eb('target_id', '=', keyId)]),
          eb('actor_key_id', '=', keyId),
        ]),
      );
    }
    const userId = f.visibleTo;
    if (userId !== undefined) {
      q = q.where((eb) => eb.or([eb('actor_id', '=', userId), eb('target_owner_id', '=', userId)]));
    }
    return q.orderBy('id', 'desc').limit(f.limit).execute();
  }

  /**
   * Deletes up to `batch` events with an id below `beforeId` (ids are `evt_` + ULID, so that means
   * older: the primary key serves it, and no index on `at` costs every write); returns how many.
   * Batched so a large backlog
   * never holds one long write lock (SQLite) or one huge transaction (PostgreSQL).
   */
  async pruneBatch(beforeId: string, batch: number): Promise<number> {
    const res = await this.db
      .deleteFrom('audit_events')
      .where('id', 'in', (eb) =>
        eb.selectFrom('audit_events').select('id').where('id', '<', beforeId).orderBy('id').limit(batch),
      )
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}
