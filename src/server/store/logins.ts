import type { Kysely } from 'kysely';
import type { CliLoginsTable, Database } from './schema.js';

export type LoginRow = CliLoginsTable;
export type LoginStatus = 'pending' | 'approved' | 'denied' | 'exchanged';

/**
 * CLI login sessions. Every state change is a conditional UPDATE on the current status, so two
 * concurrent requests (two exchanges, an approve racing a deny) can never both win.
 */
export class LoginsRepo {
  constructor(private readonly db: Kysely<Database>) {}

  /** Inserts a login; false when its user-code hash collides with another one (pick a new code). */
  async insert(row: LoginRow): Promise<boolean> {
    const res = await this.db
      .insertInto('cli_logins')
      .values(row)
      .onConflict((oc) => oc.column('user_code_hash').doNothing())
      .executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  async get(id: string): Promise<LoginRow | undefined> {
    return this.db.selectFrom('cli_logins').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async findByUserCodeHash(hash: string): Promise<LoginRow | undefined> {
    return this.db.selectFrom('cli_logins').selectAll().where('user_code_hash', '=', hash).executeTakeFirst();
  }

  /**
   * Records a poll at `at` unless the previous one was less than `interval_s` before it (less
   * `toleranceMs`). Returns false when the caller polls too fast (SLOW_DOWN).
   */
  async recordPoll(id: string, at: Date, toleranceMs = 0): Promise<boolean> {
    const row = await this.get(id);
    if (!row) return false;
    const earliest = new Date(at.getTime() - row.interval_s * 1000 + toleranceMs).toISOString();
    const res = await this.db
      .updateTable('cli_logins')
      .set({ last_poll_at: at.toISOString() })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('last_poll_at', 'is', null), eb('last_poll_at', '<=', earliest)]))
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** pending -> approved/denied while the login is alive; false when someone decided first or it expired. */
  async decide(
    id: string,
    decision: {
      status: 'approved' | 'denied';
      userId: string;
      approvalCodeHash: string | null;
      projectId?: string | null;
    },
    at: Date,
  ): Promise<boolean> {
    const now = at.toISOString();
    const res = await this.db
      .updateTable('cli_logins')
      .set({
        status: decision.status,
        user_id: decision.userId,
        approval_code_hash: decision.approvalCodeHash,
        project_id: decision.projectId ?? null,
        decided_at: now,
      })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** approved -> exchanged, exactly once: of concurrent exchanges only one sees true. */
  async markExchanged(id: string, at: Date): Promise<boolean> {
    const now = at.toISOString();
    const res = await this.db
      .updateTable('cli_logins')
      .set({ status: 'exchanged', approval_code_hash: null })
      .where('id', '=', id)
      .where('status', '=', 'approved')
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** Housekeeping: forgets logins that expired before `before`. */
  async deleteExpired(before: string): Promise<void> {
    await this.db.deleteFrom('cli_logins').where('expires_at', '<', before).execute();
  }
}
