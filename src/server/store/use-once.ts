import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

/** The tables that record single uses: a hashed id, kept until `expires_at`. */
export type UseOnceTable = 'oidc_token_uses' | 'used_form_tokens';

/**
 * Records the use of `id`; false when it was used already. One INSERT ... ON CONFLICT DO NOTHING:
 * of two concurrent uses exactly one wins, on any instance, and a PostgreSQL transaction is not
 * aborted by the conflict.
 */
export async function useOnce(
  db: Kysely<Database>,
  table: UseOnceTable,
  id: string,
  expiresAt: string,
): Promise<boolean> {
  const res = await db
    .insertInto(table)
    .values({ id, expires_at: expiresAt })
    .onConflict((oc) => oc.column('id').doNothing())
    .executeTakeFirst();
  return Number(res.numInsertedOrUpdatedRows ?? 0n) > 0;
}
