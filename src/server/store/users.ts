import type { Kysely } from 'kysely';
import { newUserId } from '../../core/ids.js';
import { OrgsRepo } from './orgs.js';
import type { Database, Engine, UsersTable } from './schema.js';

export type UserRow = UsersTable;

/** Emails are compared case-insensitively: stored trimmed and lower-cased. */
export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export class UsersRepo {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly engine: () => Engine,
  ) {}

  async get(id: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async findByEmail(email: string): Promise<UserRow | undefined> {
    return this.db
      .selectFrom('users')
      .selectAll()
      .where('email', '=', normaliseEmail(email))
      .executeTakeFirst();
  }

  /**
   * Returns the user with this email, creating it if needed (safe against a concurrent create),
   * with its personal organization (PLATFORM.md: created with the account).
   */
  async ensure(email: string, now = new Date()): Promise<UserRow> {
    const row: UserRow = {
      id: newUserId(now.getTime()),
      email: normaliseEmail(email),
      created_at: now.toISOString(),
    };
    await this.db
      .insertInto('users')
      .values(row)
      .onConflict((oc) => oc.column('email').doNothing())
      .execute();
    const user = await this.findByEmail(row.email);
    if (!user) throw new Error('user vanished after insert');
    await new OrgsRepo(this.db, this.engine).ensurePersonal(user, now);
    return user;
  }
}
