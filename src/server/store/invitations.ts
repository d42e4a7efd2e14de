import type { Kysely } from 'kysely';
import type { Database, InvitationsTable } from './schema.js';

export type InvitationRow = Omit<InvitationsTable, 'attempts'> & { attempts: number };

/** Invitations to an organization: the code is stored as a hash only; single use; a few tries. */
export class InvitationsRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(row: Omit<InvitationRow, 'attempts'>): Promise<void> {
    await this.db.insertInto('invitations').values(row).execute();
  }

  async get(id: string): Promise<InvitationRow | undefined> {
    return this.db.selectFrom('invitations').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Counts a try before the comparison; false when the invitation is used or out of tries. */
  async addAttempt(id: string, maxAttempts: number): Promise<boolean> {
    const res = await this.db
      .updateTable('invitations')
      .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
      .where('id', '=', id)
      .where('accepted_at', 'is', null)
      .where('attempts', '<', maxAttempts)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** Marks it accepted; exactly one concurrent caller wins. */
  async consume(id: string, at: string, maxAttempts: number): Promise<boolean> {
    const res = await this.db
      .updateTable('invitations')
      .set({ accepted_at: at })
      .where('id', '=', id)
      .where('accepted_at', 'is', null)
      .where('attempts', '<=', maxAttempts)
      .where('expires_at', '>', at)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** The organization's open invitations (not accepted, not expired), newest first. */
  async listOpen(orgId: string, now: string): Promise<InvitationRow[]> {
    return this.db
      .selectFrom('invitations')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('accepted_at', 'is', null)
      .where('expires_at', '>', now)
      .orderBy('created_at', 'desc')
      .limit(500)
      .execute();
  }

  /** Withdraws an open invitation of `orgId`; false when there is none such. */
  async revoke(orgId: string, id: string): Promise<boolean> {
    const res = await this.db
      .deleteFrom('invitations')
      .where('org_id', '=', orgId)
      .where('id', '=', id)
      .where('accepted_at', 'is', null)
      .executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }
}
