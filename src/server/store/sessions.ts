import type { Kysely } from 'kysely';
import type { BrowserSessionsTable, Database } from './schema.js';
import { useOnce } from './use-once.js';

export type SessionRow = BrowserSessionsTable;

export interface SessionWithUser {
  session: SessionRow;
  email: string;
}

/** Browser sessions; only a hash of the cookie's token is stored. */
export class SessionsRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(row: SessionRow): Promise<void> {
    await this.db.insertInto('browser_sessions').values(row).execute();
  }

  /** The live session with this token hash, with its user's email. */
  async findLive(tokenHash: string, now: string): Promise<SessionWithUser | undefined> {
    const row = await this.db
      .selectFrom('browser_sessions')
      .innerJoin('users', 'users.id', 'browser_sessions.user_id')
      .selectAll('browser_sessions')
      .select('users.email as email')
      .where('browser_sessions.token_hash', '=', tokenHash)
      .where('browser_sessions.expires_at', '>', now)
      .executeTakeFirst();
    if (!row) return undefined;
    const { email, ...session } = row;
    return { session, email };
  }

  async deleteByTokenHash(tokenHash: string): Promise<void> {
    await this.db.deleteFrom('browser_sessions').where('token_hash', '=', tokenHash).execute();
  }

  /** A user's live sessions, newest first (the account page). */
  async listLive(userId: string, now: string): Promise<SessionRow[]> {
    return this.db
      .selectFrom('browser_sessions')
      .selectAll()
      .where('user_id', '=', userId)
      .where('expires_at', '>', now)
      .orderBy('created_at', 'desc')
      .limit(200)
      .execute();
  }

  /** Ends one session of `userId` (another user's session id matches nothing). */
  async deleteOfUser(userId: string, id: string): Promise<boolean> {
    const res = await this.db
      .deleteFrom('browser_sessions')
      .where('user_id', '=', userId)
      .where('id', '=', id)
      .executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  /** Ends every session of `userId` ("sign out everywhere"). */
  async deleteAllOfUser(userId: string): Promise<void> {
    await this.db.deleteFrom('browser_sessions').where('user_id', '=', userId).execute();
  }

  /** Records that a one-time form token was used; false when it already was (the form sent again). See useOnce. */
  async useFormToken(id: string, expiresAt: string): Promise<boolean> {
    return useOnce(this.db, 'used_form_tokens', id, expiresAt);
  }

  /** Forgets a used form token (its form made nothing). */
  async releaseFormToken(id: string): Promise<void> {
    await this.db.deleteFrom('used_form_tokens').where('id', '=', id).execute();
  }

  /** Housekeeping: forgets sessions, and used form tokens, that expired before `before`. */
  async deleteExpired(before: string): Promise<void> {
    await this.db.deleteFrom('browser_sessions').where('expires_at', '<', before).execute();
    await this.db.deleteFrom('used_form_tokens').where('expires_at', '<', before).execute();
  }
}
