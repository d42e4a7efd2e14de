import type { Kysely } from 'kysely';
import type { Database, EmailCodesTable } from './schema.js';

export type EmailCodeRow = Omit<EmailCodesTable, 'attempts'> & { attempts: number };

export class CodesRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(row: Omit<EmailCodeRow, 'attempts'>): Promise<void> {
    await this.db.insertInto('email_codes').values(row).execute();
  }

  async get(id: string): Promise<EmailCodeRow | undefined> {
    return this.db.selectFrom('email_codes').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Counts a wrong try; returns false when the code was already dead or used. */
  async addFailedAttempt(id: string, maxAttempts: number): Promise<boolean> {
    const res = await this.db
      .updateTable('email_codes')
      .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
      .where('id', '=', id)
      .where('used_at', 'is', null)
      .where('attempts', '<', maxAttempts)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** Marks the code used; exactly one concurrent caller wins. */
  async consume(id: string, at: string, maxAttempts: number): Promise<boolean> {
    const res = await this.db
      .updateTable('email_codes')
      .set({ used_at: at })
      .where('id', '=', id)
      .where('used_at', 'is', null)
      .where('attempts', '<', maxAttempts)
      .where('expires_at', '>', at)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** Removes codes past their life (housekeeping). */
  async deleteExpired(before: string): Promise<void> {
    await this.db.deleteFrom('email_codes').where('expires_at', '<', before).execute();
  }
}
