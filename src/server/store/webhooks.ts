import { type Kysely, sql } from 'kysely';
import type { Database, WebhookDeliveriesTable, WebhooksTable } from './schema.js';

export type WebhookRow = WebhooksTable;
export type DeliveryRow = WebhookDeliveriesTable;

/** The event names of a webhook row. */
export function eventsOf(row: Pick<WebhookRow, 'events'>): string[] {
  return row.events.split(' ').filter(Boolean);
}

/** True when a webhook subscribed to `type` (or to everything). */
export function subscribes(row: Pick<WebhookRow, 'events'>, type: string): boolean {
  const events = eventsOf(row);
  return events.includes('*') || events.includes(type);
}

/**
 * Queries on `webhooks`, `webhook_deliveries` and `webhook_expiry_notices`. Built over whatever
 * Kysely handle it is given: the store's, or a transaction's (an event's deliveries are enqueued in
 * the transaction that records the event).
 */
/** A due delivery, as the worker picks it: which webhook and organization it would occupy. */
export interface DueDelivery {
  id: string;
  webhook_id: string;
  org_id: string;
}

export class WebhooksRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(row: WebhookRow): Promise<void> {
    await this.db.insertInto('webhooks').values(row).execute();
  }

  async get(id: string): Promise<WebhookRow | undefined> {
    return this.db.selectFrom('webhooks').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async listForOrg(orgId: string): Promise<WebhookRow[]> {
    return this.db
      .selectFrom('webhooks')
      .selectAll()
      .where('org_id', '=', orgId)
      .orderBy('id', 'desc')
      .execute();
  }

  async countForOrg(orgId: string): Promise<number> {
    const r = await this.db
      .selectFrom('webhooks')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('org_id', '=', orgId)
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  /** Deletes a webhook and (cascade) its delivery log; false when it was not there. */
  async delete(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('webhooks').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async insertDeliveries(rows: DeliveryRow[]): Promise<void> {
    if (rows.length > 0) await this.db.insertInto('webhook_deliveries').values(rows).execute();
  }

  async deliveries(webhookId: string, limit: number): Promise<DeliveryRow[]> {
    return this.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('webhook_id', '=', webhookId)
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
  }

  async delivery(id: string): Promise<DeliveryRow | undefined> {
    return this.db.selectFrom('webhook_deliveries').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /**
   * Pending deliveries due at `now` whose lease (if any) ran out, oldest due first, with their
   * webhook and organization; none of the webhooks or organizations in `skip` (those the worker
   * has enough attempts in flight for).
   */
  async due(
    now: string,
    limit: number,
    skip: { webhooks: readonly string[]; orgs: readonly string[] },
  ): Promise<DueDelivery[]> {
    return this.db
      .selectFrom('webhook_deliveries as d')
      .innerJoin('webhooks as w', 'w.id', 'd.webhook_id')
      .select(['d.id as id', 'd.webhook_id as webhook_id', 'w.org_id as org_id'])
      .where('d.status', '=', 'pending')
      .where('d.next_attempt_at', '<=', now)
      .where((eb) => eb.or([eb('d.lease_until', 'is', null), eb('d.lease_until', '<', now)]))
      .$if(skip.webhooks.length > 0, (q) => q.where('d.webhook_id', 'not in', skip.webhooks))
      .$if(skip.orgs.length > 0, (q) => q.where('w.org_id', 'not in', skip.orgs))
      .orderBy('d.next_attempt_at')
      .limit(limit)
      .execute();
  }

  /**
   * Takes the lease of one due delivery until `leaseUntil`: a compare-and-set, so of several
   * workers (instances sharing the database) exactly one gets each row.
   */
  async claim(id: string, now: string, leaseUntil: string): Promise<boolean> {
    const r = await this.db
      .updateTable('webhook_deliveries')
      .set({ lease_until: leaseUntil })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', now)
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Records an attempt's outcome and gives the lease back (only while it is still ours). */
  async finishAttempt(
    id: string,
    leaseUntil: string,
    outcome: Pick<
      DeliveryRow,
      'status' | 'last_status_code' | 'last_error' | 'next_attempt_at' | 'delivered_at'
    >,
  ): Promise<void> {
    await this.db
      .updateTable('webhook_deliveries')
      .set({ ...outcome, attempts: sql<number>`attempts + 1`, lease_until: null })
      .where('id', '=', id)
      .where('lease_until', '=', leaseUntil)
      .execute();
  }

  /** Gives a lease back without counting an attempt (the server is shutting down mid-attempt). */
  async release(id: string, leaseUntil: string): Promise<void> {
    await this.db
      .updateTable('webhook_deliveries')
      .set({ lease_until: null })
      .where('id', '=', id)
      .where('lease_until', '=', leaseUntil)
      .execute();
  }

  /**
   * The earliest `next_attempt_at` of a pending delivery nobody holds a lease on at `now` (the
   * worker sleeps until then; leased ones are another worker's).
   */
  async nextDue(now: string): Promise<string | null> {
    const r = await this.db
      .selectFrom('webhook_deliveries')
      .select((eb) => eb.fn.min('next_attempt_at').as('at'))
      .where('status', '=', 'pending')
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .executeTakeFirst();
    return (r?.at as string | null | undefined) ?? null;
  }

  /**
   * Deletes up to `limit` finished deliveries (delivered or given up) created before `before`;
   * returns how many went. Pending ones stay whatever their age.
   */
  async pruneFinished(before: string, limit: number): Promise<number> {
    const r = await this.db
      .deleteFrom('webhook_deliveries')
      .where(
        'id',
        'in',
        this.db
          .selectFrom('webhook_deliveries')
          .select('id')
          .where('status', '!=', 'pending')
          .where('created_at', '<', before)
          .limit(limit),
      )
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  /**
   * Remembers that the `threshold` notice of a key was sent; false when it already was (by this or
   * another instance): the primary key makes the notice once-only.
   */
  async markExpiryNotice(keyId: string, threshold: string, at: string): Promise<boolean> {
    const r = await this.db
      .insertInto('webhook_expiry_notices')
      .values({ key_id: keyId, threshold, created_at: at })
      .onConflict((oc) => oc.columns(['key_id', 'threshold']).doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  /**
   * Keys that will expire within `(now, until]` and have no `threshold` notice yet: live (not
   * disabled, not rotated away), in an organization that has at least one webhook.
   */
  async keysExpiringWithout(
    threshold: string,
    now: string,
    until: string,
    limit: number,
  ): Promise<
    {
      id: string;
      org_id: string | null;
      project_id: string | null;
      user_id: string;
      name: string;
      prefix: string;
      expires_at: string | null;
    }[]
  > {
    return this.db
      .selectFrom('api_keys as k')
      .select(['k.id', 'k.org_id', 'k.project_id', 'k.user_id', 'k.name', 'k.prefix', 'k.expires_at'])
      .where('k.expires_at', '>', now)
      .where('k.expires_at', '<=', until)
      .where('k.disabled_at', 'is', null)
      .where('k.rotated_at', 'is', null)
      .where(({ exists, selectFrom }) =>
        exists(selectFrom('webhooks as w').select('w.id').whereRef('w.org_id', '=', 'k.org_id')),
      )
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('webhook_expiry_notices as n')
              .select('n.key_id')
              .whereRef('n.key_id', '=', 'k.id')
              .where('n.threshold', '=', threshold),
          ),
        ),
      )
      .orderBy('k.expires_at')
      .limit(limit)
      .execute();
  }
}
