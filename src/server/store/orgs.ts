import type { Kysely } from 'kysely';
import { newOrgId, newProjectId } from '../../core/ids.js';
import type { Role } from '../../core/types.js';
import type { Database, Engine, MembershipsTable, OrganizationsTable, ProjectsTable } from './schema.js';

export type OrgRow = OrganizationsTable;
export type MembershipRow = MembershipsTable;
export type ProjectRow = ProjectsTable;

/** What a leak report does to a live key: disable it at once (default), or only mail its creator. */
export const LEAK_POLICIES = ['disable', 'notify'] as const;
export type LeakPolicy = (typeof LEAK_POLICIES)[number];

/** The project every organization has; keys land in it when no project is named. */
export const DEFAULT_PROJECT = 'default';

export interface OrgOfUser {
  id: string;
  name: string;
  role: Role;
  created_at: string;
}

export interface MemberRow {
  user_id: string;
  email: string;
  role: Role;
  joined_at: string;
}

/** The name a user's personal organization is created with. */
export function personalOrgName(email: string): string {
  return `${email}'s organization`;
}

/** Organizations, memberships and projects (PLATFORM.md "Organizations, members, projects"). */
export class OrgsRepo {
  constructor(
    private readonly db: Kysely<Database>,
    /** row locks are PostgreSQL's (SQLite has none: its write transaction excludes every other) */
    private readonly engine: () => Engine,
  ) {}

  async get(id: string): Promise<OrgRow | undefined> {
    return this.db.selectFrom('organizations').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /**
   * The user's personal organization (owner) with its `default` project, created if missing. Every
   * statement is an insert-if-absent keyed by a unique column, so concurrent callers (two first
   * logins at once, two instances) end up with the same one, and a caller that died half-way is
   * completed by the next.
   */
  async ensurePersonal(
    user: { id: string; email: string },
    now = new Date(),
  ): Promise<{
    org: OrgRow;
    project: ProjectRow;
  }> {
    const at = now.toISOString();
    await this.db
      .insertInto('organizations')
      .values({
        id: newOrgId(now.getTime()),
        name: personalOrgName(user.email),
        personal_user_id: user.id,
        created_at: at,
      })
      .onConflict((oc) => oc.column('personal_user_id').doNothing())
      .execute();
    const org = await this.db
      .selectFrom('organizations')
      .selectAll()
      .where('personal_user_id', '=', user.id)
      .executeTakeFirst();
    if (!org) throw new Error('personal organization vanished after insert');
    await this.db
      .insertInto('memberships')
      .values({ org_id: org.id, user_id: user.id, role: 'owner', joined_at: at })
      .onConflict((oc) => oc.columns(['org_id', 'user_id']).doNothing())
      .execute();
    const project = await this.ensureDefaultProject(org.id, now);
    return { org, project };
  }

  /** The personal organization of a user, if it exists yet. */
  async personalOf(userId: string): Promise<OrgRow | undefined> {
    return this.db
      .selectFrom('organizations')
      .selectAll()
      .where('personal_user_id', '=', userId)
      .executeTakeFirst();
  }

  /** Creates an organization with `owner` as its owner and its `default` project. Call inside a transaction. */
  async create(
    name: string,
    ownerId: string,
    now = new Date(),
  ): Promise<{ org: OrgRow; project: ProjectRow }> {
    const org: OrgRow = {
      id: newOrgId(now.getTime()),
      name,
      personal_user_id: null,
      created_at: now.toISOString(),
    };
    await this.db.insertInto('organizations').values(org).execute();
    await this.addMember(org.id, ownerId, 'owner', now);
    const project = await this.ensureDefaultProject(org.id, now);
    return { org, project };
  }

  /** The caller's organizations with their role, oldest first. */
  async listForUser(userId: string): Promise<OrgOfUser[]> {
    const rows = await this.db
      .selectFrom('memberships')
      .innerJoin('organizations', 'organizations.id', 'memberships.org_id')
      .select(['organizations.id', 'organizations.name', 'memberships.role', 'organizations.created_at'])
      .where('memberships.user_id', '=', userId)
      .orderBy('organizations.id')
      .execute();
    return rows.map((r) => ({ ...r, role: r.role as Role }));
  }

  async membership(orgId: string, userId: string): Promise<MembershipRow | undefined> {
    return this.db
      .selectFrom('memberships')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
  }

  async listMembers(orgId: string): Promise<MemberRow[]> {
    const rows = await this.db
      .selectFrom('memberships')
      .innerJoin('users', 'users.id', 'memberships.user_id')
      .select(['memberships.user_id', 'users.email', 'memberships.role', 'memberships.joined_at'])
      .where('memberships.org_id', '=', orgId)
      .orderBy('memberships.joined_at')
      .orderBy('memberships.user_id')
      .execute();
    return rows.map((r) => ({ ...r, role: r.role as Role }));
  }

  /** Adds a member; false when the user already is one (the existing role is kept). */
  async addMember(orgId: string, userId: string, role: Role, now = new Date()): Promise<boolean> {
    const res = await this.db
      .insertInto('memberships')
      .values({ org_id: orgId, user_id: userId, role, joined_at: now.toISOString() })
      .onConflict((oc) => oc.columns(['org_id', 'user_id']).doNothing())
      .executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  /**
   * Serialises changes of one organization that check before they write (membership changes, the
   * webhook cap, its settings): a no-op UPDATE of its row takes the row lock on PostgreSQL and the
   * write lock on SQLite, so "is this the last owner?" (or "is there room for one more?") and the
   * change that depends on it cannot interleave with another transaction doing the same. Inside a
   * transaction.
   */
  async lock(orgId: string): Promise<boolean> {
    const res = await this.db
      .updateTable('organizations')
      .set((eb) => ({ name: eb.ref('name') }))
      .where('id', '=', orgId)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async countOwners(orgId: string): Promise<number> {
    const row = await this.db
      .selectFrom('memberships')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('org_id', '=', orgId)
      .where('role', '=', 'owner')
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async setRole(orgId: string, userId: string, role: Role): Promise<boolean> {
    const res = await this.db
      .updateTable('memberships')
      .set({ role })
      .where('org_id', '=', orgId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async removeMember(orgId: string, userId: string): Promise<boolean> {
    const res = await this.db
      .deleteFrom('memberships')
      .where('org_id', '=', orgId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  // --- projects ---

  async ensureDefaultProject(orgId: string, now = new Date()): Promise<ProjectRow> {
    await this.db
      .insertInto('projects')
      .values({
        id: newProjectId(now.getTime()),
        org_id: orgId,
        name: DEFAULT_PROJECT,
        created_at: now.toISOString(),
      })
      .onConflict((oc) => oc.columns(['org_id', 'name']).doNothing())
      .execute();
    const project = await this.projectByName(orgId, DEFAULT_PROJECT);
    if (!project) throw new Error('default project vanished after insert');
    return project;
  }

  /**
   * A project. `lock` (inside a transaction that adds a row naming the project: a key, an OIDC
   * trust; PostgreSQL only, nothing on SQLite): FOR KEY SHARE, which waits for a deletion under way (`lockProject`) and
   * then finds the project gone, where a plain read would let the insert fail on its foreign key;
   * a deletion that comes later waits for this transaction and then finds the new row.
   */
  async project(id: string, lock = false): Promise<ProjectRow | undefined> {
    return this.db
      .selectFrom('projects')
      .selectAll()
      .where('id', '=', id)
      .$if(lock && this.engine() === 'postgres', (q) => q.forKeyShare())
      .executeTakeFirst();
  }

  async projectByName(orgId: string, name: string): Promise<ProjectRow | undefined> {
    return this.db
      .selectFrom('projects')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('name', '=', name)
      .executeTakeFirst();
  }

  async listProjects(orgId: string): Promise<ProjectRow[]> {
    return this.db.selectFrom('projects').selectAll().where('org_id', '=', orgId).orderBy('id').execute();
  }

  /** Creates a project; undefined when the organization already has one of that name. */
  async createProject(orgId: string, name: string, now = new Date()): Promise<ProjectRow | undefined> {
    const row: ProjectRow = {
      id: newProjectId(now.getTime()),
      org_id: orgId,
      name,
      created_at: now.toISOString(),
    };
    const res = await this.db
      .insertInto('projects')
      .values(row)
      .onConflict((oc) => oc.columns(['org_id', 'name']).doNothing())
      .executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0n) > 0 ? row : undefined;
  }

  /** Projects of all the user's organizations (the approve page's picker). */
  async projectsOfUser(userId: string): Promise<(ProjectRow & { org_name: string })[]> {
    return this.db
      .selectFrom('projects')
      .innerJoin('memberships', 'memberships.org_id', 'projects.org_id')
      .innerJoin('organizations', 'organizations.id', 'projects.org_id')
      .selectAll('projects')
      .select('organizations.name as org_name')
      .where('memberships.user_id', '=', userId)
      .orderBy('projects.org_id')
      .orderBy('projects.id')
      .execute();
  }

  /**
   * Locks a project's row for the transaction (PostgreSQL only: SELECT … FOR UPDATE, which a
   * foreign-key check of a concurrent insert that names the project waits for; nothing on SQLite).
   */
  async lockProject(id: string): Promise<void> {
    if (this.engine() !== 'postgres') return;
    await this.db.selectFrom('projects').select('id').where('id', '=', id).forUpdate().execute();
  }

  /**
   * Deletes a project that holds no key, in one statement; false when it is gone or holds keys (a
   * key inserted concurrently is refused by its foreign key instead).
   */
  async deleteEmptyProject(id: string): Promise<boolean> {
    const res = await this.db
      .deleteFrom('projects')
      .where('id', '=', id)
      .where(({ not, exists, selectFrom }) =>
        not(exists(selectFrom('api_keys').select('api_keys.id').where('api_keys.project_id', '=', id))),
      )
      .executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  // --- leak policy (PLATFORM.md "Leak reports") ---

  /** Sets what a leak report does to the organization's live keys; false when it is gone. */
  async setLeakPolicy(orgId: string, policy: LeakPolicy): Promise<boolean> {
    const res = await this.db
      .updateTable('organizations')
      .set({ leak_policy: policy })
      .where('id', '=', orgId)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }
}
