import type { Kysely } from 'kysely';
import type { KeyRow } from './keys.js';
import type { Database } from './schema.js';

/** Reads only the dashboard needs. */
export class DashboardRepo {
  constructor(private readonly db: Kysely<Database>) {}

  /** The keys `breeze login` minted for `userId` (one per approved CLI login), newest first. */
  async cliLoginKeys(userId: string, limit: number): Promise<KeyRow[]> {
    return this.db
      .selectFrom('api_keys')
      .selectAll()
      .where('user_id', '=', userId)
      .where('created_via', '=', 'cli_login')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
  }
}
