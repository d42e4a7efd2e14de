import type { Kysely } from 'kysely';
import type { ApiKeyInfo, CreatedVia, KeyStatus, Scope } from '../../core/types.js';
import type { ApiKeysTable, Database } from './schema.js';

export type KeyRow = ApiKeysTable;

export interface KeyWithUser {
  key: KeyRow;
  email: string;
}

export function scopesOf(row: Pick<KeyRow, 'scopes'>): Scope[] {
  return row.scopes.split(' ').filter(Boolean) as Scope[];
}

export function statusOf(row: Pick<KeyRow, 'disabled_at' | 'expires_at'>, now: Date): KeyStatus {
  if (row.disabled_at) return 'disabled';
  if (row.expires_at) return row.expires_at <= now.toISOString() ? 'expired' : 'expiring';
  return 'active';
}

/** True when a request with this key must be accepted at `now`. */
export function isUsable(row: Pick<KeyRow, 'disabled_at' | 'expires_at'>, now: Date): boolean {
  const s = statusOf(row, now);
  return s === 'active' || s === 'expiring';
}

export function toKeyInfo(row: KeyRow, now: Date): ApiKeyInfo {
  return {
    key_id: row.id,
    name: row.name,
    prefix: row.prefix,
    scopes: scopesOf(row),
    status: statusOf(row, now),
    created_at: row.created_at,
    expires_at: row.expires_at,
    last_used_at: row.last_used_at,
    disabled_at: row.disabled_at,
    rotated_from: row.rotated_from,
    created_via: row.created_via as CreatedVia,
  };
}

export interface ListKeysOptions {
  limit: number;
  /** exclusive: only keys with an id below this one (ids sort by creation time) */
  beforeId?: string;
  status?: KeyStatus;
  now: Date;
}

export class KeysRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(row: KeyRow): Promise<void> {
    await this.db.insertInto('api_keys').values(row).execute();
  }

  async get(id: string): Promise<KeyRow | undefined> {
    return this.db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** The verification lookup: one indexed read by hash, with the owner's email. */
  async findByHash(hash: string): Promise<KeyWithUser | undefined> {
    const row = await this.db
      .selectFrom('api_keys')
      .innerJoin('users', 'users.id', 'api_keys.user_id')
      .selectAll('api_keys')
      .select('users.email as email')
      .where('api_keys.hash', '=', hash)
      .executeTakeFirst();
    if (!row) return undefined;
    const { email, ...key } = row;
    return { key, email };
  }

  async list(userId: string, opts: ListKeysOptions): Promise<KeyRow[]> {
    const now = opts.now.toISOString();
    let q = this.db.selectFrom('api_keys').selectAll().where('user_id', '=', userId);
    if (opts.beforeId) q = q.where('id', '<', opts.beforeId);
    switch (opts.status) {
      case 'disabled':
        q = q.where('disabled_at', 'is not', null);
        break;
      case 'active':
        q = q.where('disabled_at', 'is', null).where('expires_at', 'is', null);
        break;
      case 'expiring':
        q = q.where('disabled_at', 'is', null).where('expires_at', '>', now);
        break;
      case 'expired':
        q = q.where('disabled_at', 'is', null).where('expires_at', '<=', now);
        break;
    }
    return q.orderBy('id', 'desc').limit(opts.limit).execute();
  }

  async update(
    id: string,
    patch: Partial<Omit<KeyRow, 'id' | 'user_id' | 'hash'>>,
  ): Promise<KeyRow | undefined> {
    await this.db.updateTable('api_keys').set(patch).where('id', '=', id).execute();
    return this.get(id);
  }

  /**
   * The check-and-set of a rotation: marks key `id` rotated at `at` and moves its expiry to
   * min(its own, `graceEnd`), in one UPDATE that matches only an enabled, unexpired key that was
   * not rotated yet. PostgreSQL re-checks the condition on the latest row version after waiting for
   * a concurrent writer's row lock, and SQLite serialises writers, so exactly one caller gets true.
   */
  async markRotated(id: string, at: string, graceEnd: string): Promise<boolean> {
    const res = await this.db
      .updateTable('api_keys')
      .set((eb) => ({
        rotated_at: at,
        expires_at: eb
          .case()
          .when(eb.and([eb('expires_at', 'is not', null), eb('expires_at', '<', graceEnd)]))
          .then(eb.ref('expires_at'))
          .else(graceEnd)
          .end(),
      }))
      .where('id', '=', id)
      .where('rotated_at', 'is', null)
      .where('disabled_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', at)]))
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  async delete(id: string): Promise<boolean> {
    const res = await this.db.deleteFrom('api_keys').where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  /** Records use; never moves `last_used_at` backwards. */
  async touch(id: string, at: string): Promise<void> {
    await this.db
      .updateTable('api_keys')
      .set({ last_used_at: at })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', at)]))
      .execute();
  }
}

export interface NewKeyFields {
  id: string;
  userId: string;
  name: string;
  prefix: string;
  hash: string;
  scopes: Scope[];
  createdAt: string;
  expiresAt: string | null;
  rotatedFrom?: string | null;
  createdVia: CreatedVia;
}

export function newKeyRow(f: NewKeyFields): KeyRow {
  return {
    id: f.id,
    user_id: f.userId,
    name: f.name,
    prefix: f.prefix,
    hash: f.hash,
    scopes: f.scopes.join(' '),
    created_at: f.createdAt,
    expires_at: f.expiresAt,
    last_used_at: null,
    disabled_at: null,
    rotated_from: f.rotatedFrom ?? null,
    rotated_at: null,
    created_via: f.createdVia,
  };
}
