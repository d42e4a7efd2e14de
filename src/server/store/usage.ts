import { type Kysely, sql } from 'kysely';
import type { Database, KeyUsageTable } from './schema.js';

export type UsageRow = KeyUsageTable;

/** Rows per INSERT statement of a flush (well under SQLite's bound-parameter limit). */
const BATCH = 200;

/** Per-key hourly usage counters; instances add their counts, so several instances sum. */
export class UsageRepo {
  constructor(private readonly db: Kysely<Database>) {}

  /** Adds counts (an upsert that sums into existing rows). Call inside a transaction for a batch. */
  async add(rows: readonly UsageRow[]): Promise<void> {
    for (let i = 0; i < rows.length; i += BATCH) {
      await this.db
        .insertInto('key_usage')
        .values(rows.slice(i, i + BATCH).map((r) => ({ ...r })))
        .onConflict((oc) =>
          oc.columns(['key_id', 'hour']).doUpdateSet({
            requests: sql`key_usage.requests + excluded.requests`,
            rejected: sql`key_usage.rejected + excluded.rejected`,
          }),
        )
        .execute();
    }
  }

  /** One key's hourly rows with `from <= hour < to`, oldest first. */
  async range(keyId: string, from: string, to: string): Promise<UsageRow[]> {
    const rows = await this.db
      .selectFrom('key_usage')
      .selectAll()
      .where('key_id', '=', keyId)
      .where('hour', '>=', from)
      .where('hour', '<', to)
      .orderBy('hour')
      .execute();
    return rows.map((r) => ({ ...r, requests: Number(r.requests), rejected: Number(r.rejected) }));
  }

  /** Requests per key since `from` (hours starting at or after it), for the given keys. */
  async requestsSince(keyIds: readonly string[], from: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (keyIds.length === 0) return out;
    const rows = await this.db
      .selectFrom('key_usage')
      .select((eb) => ['key_id', eb.fn.sum<number>('requests').as('requests')])
      .where('key_id', 'in', keyIds)
      .where('hour', '>=', from)
      .groupBy('key_id')
      .execute();
    for (const r of rows) out.set(r.key_id, Number(r.requests));
    return out;
  }
}
