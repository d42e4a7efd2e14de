import { CompiledQuery, type Kysely, sql } from 'kysely';
import { ulidTimeOf, ulidTimePrefix } from '../../core/ids.js';
import { type DirectSql, keepPrepared } from './prepared.js';
import type { AuditEventsTable, Database, Engine } from './schema.js';

export type AuditRow = AuditEventsTable;

/** The columns of an event, in the order of the insert statement's parameters. */
const COLUMNS = [
  'id',
  'at',
  'org_id',
  'project_id',
  'action',
  'actor_type',
  'actor_id',
  'actor_email',
  'actor_key_id',
  'target_type',
  'target_id',
  'target_owner_id',
  'ip',
  'user_agent',
  'request_id',
  'details',
] as const satisfies readonly (keyof AuditRow)[];
// every column of the table is in COLUMNS (a compile error names the one missing)
const allColumns: Record<Exclude<keyof AuditRow, (typeof COLUMNS)[number]>, never> = {};
void allColumns;

/**
 * How much earlier than its key's id says an event about the key may be stamped: the clocks of
 * instances sharing a database may differ (one mints the key, another records a change to it).
 */
export const KEY_EVENTS_CLOCK_SLACK_MS = 3_600_000;

/** What writing an event learnt on the way. */
export interface AuditInsertResult {
  /**
   * Whether the event's organization has at least one webhook, read in the event's transaction
   * right after its insert (what a SELECT of the webhooks would see): when false, the webhook sink
   * has nothing to enqueue and runs no query.
   */
  orgHasWebhooks: boolean;
}

/**
 * The statements of `insert`, compiled by Kysely once per engine instead of for every event (they
 * are the same for every event; parameters: the row's values in COLUMNS order).
 * - PostgreSQL: `insert … returning exists(<a webhook of its org>)`, one round trip for both.
 * - SQLite: the plain insert, then `select exists(…)`: SQLite has no round trips to save, and a
 *   RETURNING clause costs it more (its output goes through a temporary table) than the second
 *   statement does.
 */
interface InsertStatements {
  insert: string;
  /** SQLite only: one parameter, the organization */
  orgHasWebhooks?: string;
}
const statements = new Map<Engine, InsertStatements>();
/** PostgreSQL's insert with its placeholders numbered after `n` parameters of a change (see `insert`). */
const insertAfter = new Map<number, string>();

/** What a listing of the audit log covers. */
export interface AuditListFilter {
  orgId: string;
  action?: string;
  /**
   * events about this key (its target), made with it (the actor's key), and, for a rotation's
   * successor, the `key.rotated` that created it (its target is the predecessor)
   */
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
  constructor(
    private readonly db: Kysely<Database>,
    private readonly engine: () => Engine,
    /** SQLite, in a transaction: the event's statements run directly (see DirectSql) */
    private readonly direct?: DirectSql,
  ) {}

  /**
   * Writes one event, and tells whether its organization has a webhook.
   *
   * `change`: the change the event records (an INSERT, UPDATE or DELETE without RETURNING, of this
   * transaction), when the caller has not run it yet. On PostgreSQL it becomes a data-modifying CTE
   * of the event's INSERT, so change and event cost one round trip; on SQLite (in-process, no
   * round trips) it runs just before. Either way it fails or succeeds with the event.
   */
  async insert(row: AuditRow, change?: CompiledQuery): Promise<AuditInsertResult> {
    const engine = this.engine();
    const sqls = this.statements(engine);
    const values = COLUMNS.map((c) => row[c]);
    if (engine === 'postgres') {
      let text = sqls.insert;
      let params: unknown[] = values;
      if (change) {
        text = `with "change" as (${change.sql}) ${this.insertAfter(change.parameters.length)}`;
        params = [...change.parameters, ...values];
        // a change's text is the same every time for a given caller (key creation's INSERT)
        keepPrepared(text);
      }
      const query = CompiledQuery.raw(text, params);
      const res = await this.db.executeQuery<{ org_has_webhooks: boolean }>(query);
      return { orgHasWebhooks: res.rows[0]?.org_has_webhooks === true };
    }
    if (change) await this.db.executeQuery(change);
    if (this.direct) {
      this.direct.run(sqls.insert, values);
      const found = this.direct.get<{ org_has_webhooks: number }>(sqls.orgHasWebhooks as string, [
        row.org_id,
      ]);
      return { orgHasWebhooks: found?.org_has_webhooks === 1 };
    }
    await this.db.executeQuery(CompiledQuery.raw(sqls.insert, values));
    const res = await this.db.executeQuery<{ org_has_webhooks: number }>(
      CompiledQuery.raw(sqls.orgHasWebhooks as string, [row.org_id]),
    );
    return { orgHasWebhooks: res.rows[0]?.org_has_webhooks === 1 };
  }

  private statements(engine: Engine): InsertStatements {
    let compiled = statements.get(engine);
    if (compiled === undefined) {
      const template = Object.fromEntries(COLUMNS.map((c) => [c, `:${c}`])) as unknown as AuditRow;
      const insert = this.db.insertInto('audit_events').values(template);
      const query =
        engine === 'postgres'
          ? insert
              .returning((eb) =>
                eb
                  .exists(
                    eb
                      .selectFrom('webhooks')
                      .select('webhooks.id')
                      .whereRef('webhooks.org_id', '=', 'audit_events.org_id'),
                  )
                  .as('org_has_webhooks'),
              )
              .compile()
          : insert.compile();
      if (
        query.parameters.length !== COLUMNS.length ||
        query.parameters.some((p, i) => p !== `:${COLUMNS[i]}`)
      ) {
        throw new Error('the audit insert did not compile to one parameter per column, in order');
      }
      compiled = { insert: query.sql };
      if (engine === 'postgres') keepPrepared(query.sql);
      if (engine !== 'postgres') {
        compiled.orgHasWebhooks = this.db
          .selectNoFrom((eb) =>
            eb
              .exists(
                eb.selectFrom('webhooks').select('webhooks.id').where('webhooks.org_id', '=', ':org_id'),
              )
              .as('org_has_webhooks'),
          )
          .compile().sql;
      }
      statements.set(engine, compiled);
    }
    return compiled;
  }

  /** PostgreSQL's insert statement with `$1…` renumbered to follow `n` parameters of a change. */
  private insertAfter(n: number): string {
    let text = insertAfter.get(n);
    if (text === undefined) {
      // the compiled text holds identifiers and placeholders only: every `$<digits>` is a placeholder
      text = this.statements('postgres').insert.replace(/\$(\d+)/g, (_, i: string) => `$${Number(i) + n}`);
      insertAfter.set(n, text);
    }
    return text;
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
      if (Number.isFinite(ms)) q = q.where('id', '>=', `evt_${ulidTimePrefix(ms)}`);
    }
    if (f.beforeId !== undefined) q = q.where('id', '<', f.beforeId);
    const keyId = f.keyId;
    if (keyId !== undefined) {
      // A key's events all come after its creation, and its id begins with that time: bound the
      // scan there (less KEY_EVENTS_CLOCK_SLACK_MS, for instances whose clocks differ) instead of
      // walking the organization's whole log for a key with few events.
      const createdMs = ulidTimeOf(keyId, 'key_');
      if (createdMs !== undefined && createdMs <= Date.now() + 86_400_000) {
        q = q.where('id', '>=', `evt_${ulidTimePrefix(createdMs - KEY_EVENTS_CLOCK_SLACK_MS)}`);
      }
      q = q.where((eb) =>
        eb.or([
          eb.and([eb('target_type', '=', 'key'), eb('target_id', '=', keyId)]),
          eb('actor_key_id', '=', keyId),
          // a successor's own creation: the rotation that minted it (its target is the predecessor).
          // Matched in the event's details, as the event was written: not through the key's row,
          // which is gone once the key is deleted, when its history is most likely to be looked up.
          eb.and([
            eb('action', '=', 'key.rotated'),
            eb(
              sql<number>`${sql.raw(this.engine() === 'postgres' ? 'strpos' : 'instr')}(${sql.ref('details')}, ${`"new_key_id":${JSON.stringify(keyId)}`})`,
              '>',
              0,
            ),
          ]),
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
   * The organizations with events older than `beforeId`: the (org_id, id) key walked from one
   * organization to the next (one index seek each, and one more for an old event) rather than
   * reading every event.
   */
  async organizationsWithEventsBefore(beforeId: string): Promise<string[]> {
    const { rows } = await sql<{ org_id: string }>`
      with recursive orgs(org_id) as (
        select min(org_id) from audit_events
        union all
        select (select min(e.org_id) from audit_events e where e.org_id > orgs.org_id)
        from orgs where orgs.org_id is not null
      )
      select org_id from orgs
      where org_id is not null
        and exists (select 1 from audit_events o where o.org_id = orgs.org_id and o.id < ${beforeId})`.execute(
      this.db,
    );
    return rows.map((r) => r.org_id);
  }

  /**
   * Deletes up to `batch` of an organization's events with an id below `beforeId` (ids are `evt_` +
   * ULID, so that means older: the (org_id, id) key serves it, and no index on `at` costs every
   * write); returns how many. Batched so a large backlog never holds one long write lock (SQLite)
   * or one huge transaction (PostgreSQL).
   */
  async pruneBatch(orgId: string, beforeId: string, batch: number): Promise<number> {
    const res = await this.db
      .deleteFrom('audit_events')
      .where('org_id', '=', orgId)
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('audit_events')
          .select('id')
          .where('org_id', '=', orgId)
          .where('id', '<', beforeId)
          .orderBy('id')
          .limit(batch),
      )
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}
