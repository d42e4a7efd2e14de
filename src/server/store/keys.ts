import type { CompiledQuery, Kysely } from 'kysely';
import type { ApiKeyInfo, CreatedVia, KeyStatus, Role, Scope } from '../../core/types.js';
import type { ApiKeysTable, Database, Engine } from './schema.js';

export type KeyRow = ApiKeysTable;

/** The verification record: the key, its creator's email and role in the key's organization. */
export interface KeyWithUser {
  key: KeyRow;
  email: string;
  /** the creator's current role in the key's organization; null when no longer a member */
  role: Role | null;
  org_name: string | null;
  project_name: string | null;
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
    org_id: row.org_id ?? '',
    project_id: row.project_id ?? '',
    created_by: row.user_id,
  };
}

/** Which keys a listing covers: an organization's and/or one creator's, optionally one project's. */
export interface KeyListFilter {
  orgId?: string;
  userId?: string;
  projectId?: string;
}

export interface ListKeysOptions {
  limit: number;
  /** exclusive: only keys with an id below this one (ids sort by creation time) */
  beforeId?: string;
  status?: KeyStatus;
  now: Date;
}

export class KeysRepo {
  constructor(
    private readonly db: Kysely<Database>,
    /** row locks are PostgreSQL's (SQLite has none: its write transaction excludes every other) */
    private readonly engine: () => Engine,
  ) {}

  async insert(row: KeyRow): Promise<void> {
    await this.db.insertInto('api_keys').values(row).execute();
  }

  /** The statement of `insert`, not run (KeyService hands it to the audit log to run with its event). */
  insertQuery(row: KeyRow): CompiledQuery {
    return this.db.insertInto('api_keys').values(row).compile();
  }

  /**
   * A key. `lock` (PostgreSQL only, inside a transaction that changes it): FOR UPDATE, so that what
   * the change replaces cannot change again before it commits.
   */
  async get(id: string, lock = false): Promise<KeyRow | undefined> {
    return this.db
      .selectFrom('api_keys')
      .selectAll()
      .where('id', '=', id)
      .$if(lock && this.engine() === 'postgres', (q) => q.forUpdate())
      .executeTakeFirst();
  }

  /**
   * The verification lookup: one indexed read by hash, joined (all by primary key) with the
   * creator's email, their role in the key's organization, and the organization's and project's
   * names, so a cached record answers `/v1/me` and the role cap without another query.
   */
  async findByHash(hash: string): Promise<KeyWithUser | undefined> {
    const row = await this.db
      .selectFrom('api_keys')
      .innerJoin('users', 'users.id', 'api_keys.user_id')
      .leftJoin('memberships', (j) =>
        j
          .onRef('memberships.org_id', '=', 'api_keys.org_id')
          .onRef('memberships.user_id', '=', 'api_keys.user_id'),
      )
      .leftJoin('organizations', 'organizations.id', 'api_keys.org_id')
      .leftJoin('projects', 'projects.id', 'api_keys.project_id')
      .selectAll('api_keys')
      .select([
        'users.email as email',
        'memberships.role as role',
        'organizations.name as org_name',
        'projects.name as project_name',
      ])
      .where('api_keys.hash', '=', hash)
      .executeTakeFirst();
    if (!row) return undefined;
    const { email, role, org_name, project_name, ...key } = row;
    return { key, email, role: (role as Role | null) ?? null, org_name, project_name };
  }

  /** Ids of the keys `userId` created in `orgId` (to drop them from caches when the membership changes). */
  async idsByCreator(orgId: string, userId: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('api_keys')
      .select('id')
      .where('org_id', '=', orgId)
      .where('user_id', '=', userId)
      .execute();
    return rows.map((r) => r.id);
  }

  /** Keys matching `filter` (a string: every key that user created), newest first. */
  async list(filter: KeyListFilter | string, opts: ListKeysOptions): Promise<KeyRow[]> {
    const now = opts.now.toISOString();
    if (typeof filter === 'string') filter = { userId: filter };
    if (filter.orgId === undefined && filter.userId === undefined)
      throw new Error('list needs an org or a user');
    let q = this.db.selectFrom('api_keys').selectAll();
    if (filter.orgId !== undefined) q = q.where('org_id', '=', filter.orgId);
    if (filter.userId !== undefined) q = q.where('user_id', '=', filter.userId);
    if (filter.projectId !== undefined) q = q.where('project_id', '=', filter.projectId);
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
    patch: Partial<Omit<KeyRow, 'id' | 'user_id' | 'hash' | 'org_id' | 'project_id'>>,
  ): Promise<KeyRow | undefined> {
    await this.db.updateTable('api_keys').set(patch).where('id', '=', id).execute();
    return this.get(id);
  }

  /**
   * Disables (`disabledAt` a time) or enables (null) key `id`, only when it is not so already: of
   * concurrent calls one changes it. False when nothing changed (it already was, or it is gone).
   */
  async setDisabled(id: string, disabledAt: string | null): Promise<boolean> {
    const res = await this.db
      .updateTable('api_keys')
      .set({ disabled_at: disabledAt })
      .where('id', '=', id)
      .where('disabled_at', disabledAt === null ? 'is not' : 'is', null)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
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
  orgId: string;
  projectId: string;
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
    org_id: f.orgId,
    project_id: f.projectId,
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
