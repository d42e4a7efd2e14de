import { randomString } from '../../core/base62.js';
import { HttpError } from '../../core/errors.js';
import { safeEqual } from '../../core/hash.js';
import { newInvitationId } from '../../core/ids.js';
import type { Role } from '../../core/types.js';
import {
  authorizeMemberChange,
  authorizeOrg,
  capScopes,
  type OrgAccess,
  type OrgAction,
  orgAccess,
} from '../authz.js';
import type { AuthContext, ServerContext } from '../context.js';
import {
  EMAIL_CODE_ALPHABET,
  EMAIL_CODE_LENGTH,
  EMAIL_CODE_MAX_ATTEMPTS,
  normaliseCode,
} from '../email-codes.js';
import type { StoreTx } from '../store/index.js';
import type { InvitationRow } from '../store/invitations.js';
import { scopesOf } from '../store/keys.js';
import {
  DEFAULT_PROJECT,
  type MemberRow,
  type OrgOfUser,
  type OrgRow,
  type ProjectRow,
} from '../store/orgs.js';
import { normaliseEmail } from '../store/users.js';
import { type AuditActor, actorOf, type RequestMeta, SYSTEM_META } from './audit.js';
import { recordRevocations } from './key-events.js';
import { trustDeletedEvent } from './oidc-trusts.js';

/** An invitation lives 7 days (PLATFORM.md). */
export const INVITATION_TTL_MS = 7 * 86400_000;

export function invitationSubject(orgName: string): string {
  return `You are invited to ${orgName} on Breeze`;
}

function notFound(what = 'No such organization.'): HttpError {
  return new HttpError('NOT_FOUND', what);
}

/**
 * Organizations, members, invitations and projects: what the org routes share. Authorization is
 * asked of authz.ts; this module loads what it needs and keeps the invariants (last owner, keys of
 * a removed member dropped from every instance's cache).
 */
export class OrgService {
  constructor(private readonly ctx: ServerContext) {}

  /**
   * The caller's access to an organization: its user's membership there. Not a member (or no such
   * organization) is 404: another organization's existence is never revealed.
   */
  async access(auth: AuthContext, orgId: string, action?: OrgAction): Promise<OrgAccess> {
    let role: Role | undefined;
    if (auth.type === 'api_key' && auth.org?.id === orgId) role = auth.org.role;
    else role = (await this.ctx.store.orgs.membership(orgId, auth.user.id))?.role as Role | undefined;
    if (!role) throw notFound();
    const access = orgAccess(auth, orgId, role);
    if (action) authorizeOrg(access, action);
    return access;
  }

  /**
   * The organization a call without an explicit one acts in: the key's for an API key; for a
   * session or JWT `orgId` when given, else the personal organization.
   */
  async defaultAccess(auth: AuthContext, orgId?: string): Promise<OrgAccess> {
    if (orgId !== undefined) return this.access(auth, orgId);
    if (auth.type === 'api_key' && auth.org) return this.access(auth, auth.org.id);
    const { org } = await this.ensurePersonal(auth);
    return this.access(auth, org.id);
  }

  /**
   * Where a new key of the caller goes, and the caller's access there: `projectId` when given (404
   * unless the caller is a member of its organization); else the calling key's project; for a
   * session or JWT, the personal organization's `default` project.
   */
  async keyProject(auth: AuthContext, projectId?: string): Promise<{ projectId: string; access: OrgAccess }> {
    if (projectId !== undefined) {
      const { project, access } = await this.project(auth, projectId);
      return { projectId: project.id, access };
    }
    if (auth.type === 'api_key' && auth.project && auth.org) {
      return { projectId: auth.project.id, access: await this.access(auth, auth.org.id) };
    }
    const { org, project } = await this.ensurePersonal(auth);
    return { projectId: project.id, access: await this.access(auth, org.id) };
  }

  async ensurePersonal(auth: AuthContext): Promise<{ org: OrgRow; project: ProjectRow }> {
    return this.ctx.store.orgs.ensurePersonal(auth.user, this.ctx.clock());
  }

  async get(orgId: string): Promise<OrgRow> {
    const org = await this.ctx.store.orgs.get(orgId);
    if (!org) throw notFound();
    return org;
  }

  list(auth: AuthContext): Promise<OrgOfUser[]> {
    return this.ctx.store.orgs.listForUser(auth.user.id);
  }

  async create(auth: AuthContext, name: string): Promise<OrgOfUser> {
    if (auth.type === 'api_key' && !auth.scopes.includes('admin')) {
      throw new HttpError(
        'FORBIDDEN',
        'Creating an organization needs a session, a JWT or a key with "admin".',
      );
    }
    const now = this.ctx.clock();
    const { org } = await this.ctx.store.transaction((tx) => tx.orgs.create(name, auth.user.id, now));
    return { id: org.id, name: org.name, role: 'owner', created_at: org.created_at };
  }

  members(access: OrgAccess): Promise<MemberRow[]> {
    authorizeOrg(access, 'members.list');
    return this.ctx.store.orgs.listMembers(access.orgId);
  }

  /** Changes a member's role; the last owner cannot be demoted (409). Their keys narrow at once. */
  async changeRole(
    access: OrgAccess,
    userId: string,
    role: Role,
    meta: RequestMeta = SYSTEM_META,
  ): Promise<MemberRow> {
    const target = await this.member(access.orgId, userId);
    authorizeMemberChange(access, { userId, role: target.role }, 'members.update', role);
    await this.ctx.store.transaction(async (tx) => {
      if (!(await tx.orgs.lock(access.orgId))) throw notFound();
      const current = await tx.orgs.membership(access.orgId, userId);
      if (!current) throw notFound('No such member.');
      authorizeMemberChange(
        await this.accessNow(tx, access),
        { userId, role: current.role as Role },
        'members.update',
        role,
      );
      if (current.role === 'owner' && role !== 'owner' && (await tx.orgs.countOwners(access.orgId)) <= 1) {
        throw new HttpError('CONFLICT', 'The last owner cannot be demoted: make someone else owner first.');
      }
      await tx.orgs.setRole(access.orgId, userId, role);
      if (current.role !== role) {
        await this.record(tx, meta, actorOf(access.auth), access.orgId, 'member.role_changed', userId, {
          email: target.email,
          from: current.role,
          to: role,
        });
      }
      // keys whose effective scopes the new role narrows are revoked for verifiers (key.revoked)
      const narrowed = (await tx.keyEvents.keysByCreator(access.orgId, userId)).filter((k) => {
        const own = scopesOf(k);
        const after = capScopes(own, role);
        return capScopes(own, current.role as Role).some((s) => !after.includes(s));
      });
      await recordRevocations(
        tx,
        narrowed.map((k) => ({ org_id: access.orgId, key_id: k.id, reason: 'role_changed' as const })),
        this.ctx.clock(),
      );
    });
    await this.dropKeysOf(access.orgId, userId);
    return { ...target, role };
  }

  /** Removes a member (or the caller leaves); the last owner cannot (409). Their keys there die at once. */
  async removeMember(access: OrgAccess, userId: string, meta: RequestMeta = SYSTEM_META): Promise<void> {
    const target = await this.member(access.orgId, userId);
    authorizeMemberChange(access, { userId, role: target.role }, 'members.remove');
    await this.ctx.store.transaction(async (tx) => {
      if (!(await tx.orgs.lock(access.orgId))) throw notFound();
      const current = await tx.orgs.membership(access.orgId, userId);
      if (!current) throw notFound('No such member.');
      authorizeMemberChange(
        await this.accessNow(tx, access),
        { userId, role: current.role as Role },
        'members.remove',
      );
      if (current.role === 'owner' && (await tx.orgs.countOwners(access.orgId)) <= 1) {
        throw new HttpError(
          'CONFLICT',
          'The last owner cannot leave or be removed: make someone else owner first.',
        );
      }
      await tx.orgs.removeMember(access.orgId, userId);
      await this.record(tx, meta, actorOf(access.auth), access.orgId, 'member.removed', userId, {
        email: target.email,
        role: current.role,
        left: userId === access.auth.user.id,
      });
      const gone = await tx.keyEvents.keysByCreator(access.orgId, userId);
      await recordRevocations(
        tx,
        gone.map((k) => ({ org_id: access.orgId, key_id: k.id, reason: 'member_removed' as const })),
        this.ctx.clock(),
      );
    });
    await this.dropKeysOf(access.orgId, userId);
  }

  /**
   * The caller's access as it is now, read under the organization's lock: a membership change is
   * authorized again on the roles of that moment, so one that raced it (the target made owner, the
   * caller demoted or removed) cannot let a check made on older roles through.
   */
  private async accessNow(tx: StoreTx, access: OrgAccess): Promise<OrgAccess> {
    const mine = await tx.orgs.membership(access.orgId, access.auth.user.id);
    if (!mine) throw notFound();
    return orgAccess(access.auth, access.orgId, mine.role as Role);
  }

  private async member(orgId: string, userId: string): Promise<MemberRow> {
    const m = await this.ctx.store.orgs.membership(orgId, userId);
    const user = m ? await this.ctx.store.users.get(userId) : undefined;
    if (!m || !user) throw notFound('No such member.');
    return { user_id: userId, email: user.email, role: m.role as Role, joined_at: m.joined_at };
  }

  /**
   * The member's keys in that organization carry their old role in every instance's verification
   * cache: drop them here and (NOTIFY) everywhere, after the change is committed.
   */
  private async dropKeysOf(orgId: string, userId: string): Promise<void> {
    const ids = await this.ctx.store.keys.idsByCreator(orgId, userId);
    for (const id of ids) await this.ctx.keys.changed(id);
  }

  // --- invitations ---

  /** Creates an invitation and mails it (subject, link, code); the code is kept as a hash only. */
  async invite(
    access: OrgAccess,
    email: string,
    role: Role,
    meta: RequestMeta = SYSTEM_META,
  ): Promise<InvitationRow> {
    authorizeOrg(access, 'members.invite');
    if (role === 'owner' && access.role !== 'owner') {
      throw new HttpError('FORBIDDEN', 'Only an owner can invite an owner.');
    }
    const org = await this.get(access.orgId);
    // an invitation a member could only answer with 409: say so now, and mail nobody
    const invitee = await this.ctx.store.users.findByEmail(normaliseEmail(email));
    if (invitee && (await this.ctx.store.orgs.membership(org.id, invitee.id))) {
      throw new HttpError('CONFLICT', `${normaliseEmail(email)} is already a member of this organization.`);
    }
    const now = this.ctx.clock();
    const id = newInvitationId(now.getTime());
    const code = randomString(EMAIL_CODE_LENGTH, EMAIL_CODE_ALPHABET);
    const row: InvitationRow = {
      id,
      org_id: org.id,
      email: normaliseEmail(email),
      role,
      code_hash: this.invitationHash(id, code),
      invited_by: access.auth.user.id,
      attempts: 0,
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + INVITATION_TTL_MS).toISOString(),
      accepted_at: null,
    };
    const { attempts: _attempts, ...insert } = row;
    await this.ctx.store.transaction(async (tx) => {
      await tx.invitations.insert(insert);
      await this.ctx.audit.record(tx, meta, {
        action: 'member.invited',
        orgId: org.id,
        actor: actorOf(access.auth),
        target: { type: 'invitation', id },
        details: { email: row.email, role, expires_at: row.expires_at },
      });
    });
    // the sign-in page: accepting is done signed in as the invited email (CLI or API)
    const link = `${this.ctx.config.publicUrl.replace(/\/+$/, '')}/login`;
    await this.ctx.mailer.send({
      to: row.email,
      subject: invitationSubject(org.name),
      text: [
        `${access.auth.user.email} invited you to join ${org.name} on Breeze as ${role}.`,
        '',
        `Sign in as ${row.email}: ${link}`,
        `Your invitation code is ${code}. To accept, run:`,
        `    breeze invitations accept ${id} --code ${code}`,
        '',
        'The invitation works once and expires in 7 days. If you did not expect it, ignore this mail.',
      ].join('\n'),
    });
    return row;
  }

  /**
   * Accepts an invitation for the caller: only the invited email, only with the right code, once,
   * within 7 days; anything else is 404 (never which part was wrong). 5 wrong codes kill it.
   */
  async accept(
    auth: AuthContext,
    id: string,
    input: string,
    meta: RequestMeta = SYSTEM_META,
  ): Promise<MemberRow & { org_id: string }> {
    // joining an organization changes the account: a user credential (session, JWT) or a key that
    // holds "admin" (one that grants everything its user can reach), like creating an organization
    if (auth.type === 'api_key' && !auth.scopes.includes('admin')) {
      throw new HttpError(
        'FORBIDDEN',
        'Accepting an invitation needs a session, a JWT or a key with "admin".',
      );
    }
    const repo = this.ctx.store.invitations;
    const inv = await repo.get(id);
    const now = this.ctx.clock().toISOString();
    const gone = () =>
      new HttpError('NOT_FOUND', 'No such invitation for you: unknown, used, expired, or the code is wrong.');
    if (!inv || inv.accepted_at || inv.expires_at <= now || inv.attempts >= EMAIL_CODE_MAX_ATTEMPTS)
      throw gone();
    if (normaliseEmail(auth.user.email) !== inv.email) throw gone();
    if (!(await repo.addAttempt(id, EMAIL_CODE_MAX_ATTEMPTS))) throw gone();
    if (!safeEqual(this.invitationHash(id, normaliseCode(input)), inv.code_hash)) throw gone();
    const joined = await this.ctx.store.transaction(async (tx) => {
      if (!(await tx.invitations.consume(id, now, EMAIL_CODE_MAX_ATTEMPTS))) return null;
      const added = await tx.orgs.addMember(inv.org_id, auth.user.id, inv.role as Role, this.ctx.clock());
      if (!added) throw new HttpError('CONFLICT', 'You are already a member of this organization.');
      await this.record(tx, meta, actorOf(auth), inv.org_id, 'member.joined', auth.user.id, {
        email: auth.user.email,
        role: inv.role,
        invitation_id: inv.id,
      });
      return tx.orgs.membership(inv.org_id, auth.user.id);
    });
    if (!joined) throw gone();
    // keys the user made in this organization before (removed, now back) answer again at once
    await this.dropKeysOf(inv.org_id, auth.user.id);
    return {
      org_id: inv.org_id,
      user_id: auth.user.id,
      email: auth.user.email,
      role: joined.role as Role,
      joined_at: joined.joined_at,
    };
  }

  /** Open invitations of the organization (those who may invite see them). */
  invitations(access: OrgAccess): Promise<InvitationRow[]> {
    authorizeOrg(access, 'members.invite');
    return this.ctx.store.invitations.listOpen(access.orgId, this.ctx.clock().toISOString());
  }

  /** Withdraws an open invitation: its code stops working at once. */
  async revokeInvitation(access: OrgAccess, id: string): Promise<void> {
    authorizeOrg(access, 'members.invite');
    if (!(await this.ctx.store.invitations.revoke(access.orgId, id))) throw notFound('No such invitation.');
  }

  /** A member event: the member is the target (and may read it). */
  private async record(
    tx: StoreTx,
    meta: RequestMeta,
    actor: AuditActor,
    orgId: string,
    action: 'member.role_changed' | 'member.removed' | 'member.joined',
    userId: string,
    details: Record<string, unknown>,
  ): Promise<void> {
    await this.ctx.audit.record(tx, meta, {
      action,
      orgId,
      actor,
      target: { type: 'user', id: userId, ownerId: userId },
      details,
    });
  }

  private invitationHash(id: string, code: string): string {
    return this.ctx.hasher(`invitation:${id}:${code}`);
  }

  // --- projects ---

  projects(access: OrgAccess): Promise<ProjectRow[]> {
    authorizeOrg(access, 'org.read');
    return this.ctx.store.orgs.listProjects(access.orgId);
  }

  async createProject(access: OrgAccess, name: string, meta: RequestMeta = SYSTEM_META): Promise<ProjectRow> {
    authorizeOrg(access, 'projects.create');
    const row = await this.ctx.store.transaction(async (tx) => {
      const created = await tx.orgs.createProject(access.orgId, name, this.ctx.clock());
      if (created) {
        await this.ctx.audit.record(tx, meta, {
          action: 'project.created',
          orgId: access.orgId,
          projectId: created.id,
          actor: actorOf(access.auth),
          target: { type: 'project', id: created.id },
          details: { name: created.name },
        });
      }
      return created;
    });
    if (!row) throw new HttpError('CONFLICT', `This organization already has a project named "${name}".`);
    return row;
  }

  /** A project and the caller's access to its organization; 404 when the caller is no member there. */
  async project(
    auth: AuthContext,
    projectId: string,
    action?: OrgAction,
  ): Promise<{ project: ProjectRow; access: OrgAccess }> {
    const project = await this.ctx.store.orgs.project(projectId);
    if (!project) throw notFound('No such project.');
    let access: OrgAccess;
    try {
      access = await this.access(auth, project.org_id);
    } catch (err) {
      if (err instanceof HttpError && err.code === 'NOT_FOUND') throw notFound('No such project.');
      throw err;
    }
    if (action) authorizeOrg(access, action);
    return { project, access };
  }

  async deleteProject(auth: AuthContext, projectId: string, meta: RequestMeta = SYSTEM_META): Promise<void> {
    const { project } = await this.project(auth, projectId, 'projects.delete');
    if (project.name === DEFAULT_PROJECT) {
      throw new HttpError('CONFLICT', 'The "default" project cannot be deleted: keys land there by default.');
    }
    const deleted = await this.ctx.store.transaction(async (tx) => {
      // the project's OIDC trusts go with it (a foreign key's cascade): each deletion is recorded,
      // as one by "oidc trust delete" is, so a CI identity never disappears without a trace. On
      // PostgreSQL the project is locked first (a trust added meanwhile waits, then finds it gone)
      // and the trusts read are locked (one deleted meanwhile is not recorded twice); SQLite's
      // write transaction already excludes both.
      await tx.orgs.lockProject(project.id);
      const trusts = await tx.oidc.trustsOfProject(project.id, true);
      if (!(await tx.orgs.deleteEmptyProject(project.id))) return false;
      const actor = actorOf(auth);
      await this.ctx.audit.record(tx, meta, {
        action: 'project.deleted',
        orgId: project.org_id,
        projectId: project.id,
        actor,
        target: { type: 'project', id: project.id },
        details: { name: project.name },
      });
      for (const trust of trusts) await this.ctx.audit.record(tx, meta, trustDeletedEvent(trust, actor));
      return true;
    });
    if (!deleted) {
      if (await this.ctx.store.orgs.project(project.id)) {
        throw new HttpError('CONFLICT', 'This project still has keys: delete them first.');
      }
      throw notFound('No such project.');
    }
  }
}
