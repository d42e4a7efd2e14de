/**
 * Client of the team routes of PLATFORM.md ("Organizations, members, projects"): organizations,
 * members, invitations and projects. Apart from client.ts so the key and login methods stay where
 * they are; it sends through `BreezeClient.request` (retries, proxy, trace, size cap) and checks
 * every answer like validate.ts does: a mismatch is `UNEXPECTED_RESPONSE`, naming the field only.
 */
import { type MeResponse, ROLES, type Role, type UserInfo } from '../core/types.js';
import type { BreezeClient } from './client.js';
import { bad, checkUser, id, isEmailLike, nullableStr, record, str } from './validate.js';

export { ROLES, type Role };

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** An organization as `GET /v1/orgs` lists it: the caller's role in it included. */
export interface OrgInfo {
  id: string;
  name: string;
  role: Role;
  created_at: string;
}

export interface MemberInfo {
  user: UserInfo;
  role: Role;
  joined_at: string;
}

export interface ProjectInfo {
  id: string;
  name: string;
  created_at?: string;
}

export interface InvitationInfo {
  id: string;
  email: string;
  role: Role;
  expires_at: string;
}

/** The answer to accepting an invitation; the spec says "membership", so only what is there is checked. */
export interface MembershipInfo {
  org_id?: string;
  org?: { id: string; name?: string };
  role?: Role;
  user?: UserInfo;
}

/** `org` and `project` of `GET /v1/me` (PLATFORM.md): absent on servers without teams. */
export interface MeContext {
  org: { id: string; name: string; role: Role } | null;
  project: { id: string; name: string } | null;
}

function role(what: string, field: string, value: unknown): Role {
  if (!isRole(value)) throw bad(what, field, 'is not a role (owner, admin, member, viewer)');
  return value;
}

function list(what: string, value: unknown): unknown[] {
  const body = record(what, 'response', value);
  if (!Array.isArray(body.data)) throw bad(what, 'data', 'is not a list');
  return body.data;
}

export function checkOrg(what: string, value: unknown, field = 'org'): OrgInfo {
  const o = record(what, field, value);
  id(what, `${field}.id`, o.id);
  str(what, `${field}.name`, o.name);
  role(what, `${field}.role`, o.role);
  nullableStr(what, `${field}.created_at`, o.created_at);
  return o as unknown as OrgInfo;
}

/** `POST /v1/orgs` answers the org; the caller is its owner (a server may leave `role` out). */
function checkCreatedOrg(what: string, value: unknown): OrgInfo {
  const o = record(what, 'response', value);
  id(what, 'id', o.id);
  str(what, 'name', o.name);
  if (o.role !== undefined) role(what, 'role', o.role);
  nullableStr(what, 'created_at', o.created_at);
  return o as unknown as OrgInfo;
}

export function checkMember(what: string, value: unknown, field = 'member'): MemberInfo {
  const m = record(what, field, value);
  checkUser(what, m.user);
  role(what, `${field}.role`, m.role);
  nullableStr(what, `${field}.joined_at`, m.joined_at);
  return m as unknown as MemberInfo;
}

export function checkProject(what: string, value: unknown, field = 'project'): ProjectInfo {
  const p = record(what, field, value);
  id(what, `${field}.id`, p.id);
  str(what, `${field}.name`, p.name);
  nullableStr(what, `${field}.created_at`, p.created_at);
  return p as unknown as ProjectInfo;
}

function checkInvitation(what: string, value: unknown): InvitationInfo {
  const i = record(what, 'response', value);
  id(what, 'id', i.id);
  if (!isEmailLike(i.email)) throw bad(what, 'email', 'is not an email address');
  role(what, 'role', i.role);
  str(what, 'expires_at', i.expires_at);
  return i as unknown as InvitationInfo;
}

function checkMembership(what: string, value: unknown): MembershipInfo {
  const m = record(what, 'response', value);
  if (m.org_id !== undefined) id(what, 'org_id', m.org_id);
  if (m.org !== undefined) {
    const o = record(what, 'org', m.org);
    id(what, 'org.id', o.id);
    if (o.name !== undefined) str(what, 'org.name', o.name);
  }
  if (m.role !== undefined) role(what, 'role', m.role);
  if (m.user !== undefined) checkUser(what, m.user);
  return m as MembershipInfo;
}

/** `org` / `project` of a checked `/v1/me` answer, checked in turn (both optional). */
export function meContext(me: MeResponse): MeContext {
  const what = 'GET /v1/me';
  const raw = me as unknown as { org?: unknown; project?: unknown };
  let org: MeContext['org'] = null;
  let project: MeContext['project'] = null;
  if (raw.org !== undefined && raw.org !== null) {
    const o = record(what, 'org', raw.org);
    org = {
      id: id(what, 'org.id', o.id),
      name: str(what, 'org.name', o.name),
      role: role(what, 'org.role', o.role),
    };
  }
  if (raw.project !== undefined && raw.project !== null) {
    const p = record(what, 'project', raw.project);
    project = { id: id(what, 'project.id', p.id), name: str(what, 'project.name', p.name) };
  }
  return { org, project };
}

const seg = encodeURIComponent;

/** Typed methods of the team routes over a `BreezeClient` (its key, retries and checks). */
export class PlatformClient {
  constructor(private readonly client: BreezeClient) {}

  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    return (await this.client.request<unknown>(method, path, body === undefined ? {} : { body })).body;
  }

  /** `GET /v1/orgs`: the caller's organizations with the caller's role in each */
  async listOrgs(): Promise<{ data: OrgInfo[] }> {
    const what = 'GET /v1/orgs';
    const data = list(what, await this.call('GET', '/v1/orgs'));
    return { data: data.map((o, i) => checkOrg(what, o, `data[${i}]`)) };
  }

  /** `POST /v1/orgs` */
  async createOrg(name: string): Promise<OrgInfo> {
    return checkCreatedOrg('POST /v1/orgs', await this.call('POST', '/v1/orgs', { name }));
  }

  /** `GET /v1/orgs/:org_id/members` */
  async listMembers(orgId: string): Promise<{ data: MemberInfo[] }> {
    const what = 'GET /v1/orgs/:org_id/members';
    const data = list(what, await this.call('GET', `/v1/orgs/${seg(orgId)}/members`));
    return { data: data.map((m, i) => checkMember(what, m, `data[${i}]`)) };
  }

  /** `POST /v1/orgs/:org_id/invitations` (mails the code to `email`) */
  async invite(orgId: string, body: { email: string; role: Role }): Promise<InvitationInfo> {
    return checkInvitation(
      'POST /v1/orgs/:org_id/invitations',
      await this.call('POST', `/v1/orgs/${seg(orgId)}/invitations`, body),
    );
  }

  /** `POST /v1/invitations/:id/accept` */
  async acceptInvitation(invitationId: string, code: string): Promise<MembershipInfo> {
    return checkMembership(
      'POST /v1/invitations/:id/accept',
      await this.call('POST', `/v1/invitations/${seg(invitationId)}/accept`, { code }),
    );
  }

  /** `PATCH /v1/orgs/:org_id/members/:user_id` */
  async setRole(orgId: string, userId: string, newRole: Role): Promise<MemberInfo> {
    return checkMember(
      'PATCH /v1/orgs/:org_id/members/:user_id',
      await this.call('PATCH', `/v1/orgs/${seg(orgId)}/members/${seg(userId)}`, { role: newRole }),
      'response',
    );
  }

  /** `DELETE /v1/orgs/:org_id/members/:user_id` */
  async removeMember(orgId: string, userId: string): Promise<void> {
    await this.client.request('DELETE', `/v1/orgs/${seg(orgId)}/members/${seg(userId)}`);
  }

  /** `GET /v1/orgs/:org_id/projects` */
  async listProjects(orgId: string): Promise<{ data: ProjectInfo[] }> {
    const what = 'GET /v1/orgs/:org_id/projects';
    const data = list(what, await this.call('GET', `/v1/orgs/${seg(orgId)}/projects`));
    return { data: data.map((p, i) => checkProject(what, p, `data[${i}]`)) };
  }

  /** `POST /v1/orgs/:org_id/projects` */
  async createProject(orgId: string, name: string): Promise<ProjectInfo> {
    return checkProject(
      'POST /v1/orgs/:org_id/projects',
      await this.call('POST', `/v1/orgs/${seg(orgId)}/projects`, { name }),
      'response',
    );
  }

  /** `DELETE /v1/projects/:project_id` (409 while it has keys) */
  async deleteProject(projectId: string): Promise<void> {
    await this.client.request('DELETE', `/v1/projects/${seg(projectId)}`);
  }
}
