import type { FastifyInstance } from 'fastify';
import { HttpError } from '../../core/errors.js';
import { ROLES } from '../../core/types.js';
import { authorizeOrg, isAllowed } from '../authz.js';
import { requestMeta } from '../services/audit.js';
import { isValidEmail } from '../validation.js';
import { authOf, type DashboardKit, type OrgPost, orgPost, PageError, send } from './dashboard-kit.js';
import { field, textInput } from './forms.js';
import { HIDE } from './http.js';
import { orgPage } from './org-page.js';
import { platformSections } from './org-platform-routes.js';

/**
 * `/orgs/:org_id`: members and roles, invitations, projects, and the platform sections
 * (org-platform-routes.ts); every action is the OrgService's, so authz.ts decides.
 */
export function registerOrgRoutes(app: FastifyInstance, kit: DashboardKit): void {
  const { ctx, orgs } = kit;

  app.get<{ Params: { org_id: string } }>('/orgs/:org_id', { schema: HIDE }, async (request, reply) => {
    const session = await kit.signedIn(request, reply);
    if (!session) return reply;
    const auth = authOf(session);
    const access = await orgs.access(auth, request.params.org_id);
    kit.rememberOrg(reply, access.orgId);
    const canInvite = isAllowed(access, 'members.invite');
    const [org, members, projects, invitations] = await Promise.all([
      orgs.get(access.orgId),
      orgs.members(access),
      orgs.projects(access),
      canInvite ? orgs.invitations(access) : undefined,
    ]);
    const now = ctx.clock();
    const extraSections = await platformSections(kit, {
      access,
      auth,
      csrf: session.csrf,
      org,
      projects,
      now,
    });
    return send(
      reply,
      200,
      orgPage({
        viewer: await kit.viewer(request, reply, session, access.orgId),
        org: { id: org.id, name: org.name },
        role: access.role,
        userId: session.user.id,
        members,
        projects,
        invitations,
        can: {
          manageMembers: isAllowed(access, 'members.update'),
          manageProjects: isAllowed(access, 'projects.create'),
          invite: canInvite,
        },
        now,
        extraSections,
      }),
    );
  });

  app.post<OrgPost>('/orgs/:org_id/invitations', orgPost, (request, reply) =>
    kit.orgAction(request, reply, async (access) => {
      const email = (field(request.body, 'email') ?? '').trim();
      const role = ROLES.find((r) => r === field(request.body, 'role'));
      if (!isValidEmail(email)) throw new PageError('Enter a valid email address to invite.');
      if (!role) throw new PageError('Pick a role for the invitation.');
      // the organization's hourly quota, the API's counter: counted only for those who may invite
      authorizeOrg(access, 'members.invite');
      await app.breezeInvitationLimit(request);
      const inv = await orgs.invite(access, email, role, requestMeta(request));
      return { flash: { kind: 'ok', text: `Invitation sent to ${inv.email} (${inv.role}).` } };
    }),
  );

  app.post<OrgPost>('/orgs/:org_id/invitations/:invitation_id/revoke', orgPost, (request, reply) =>
    kit.orgAction(request, reply, async (access) => {
      await orgs.revokeInvitation(access, request.params.invitation_id ?? '');
      return { flash: { kind: 'ok', text: 'Invitation revoked: its code no longer works.' } };
    }),
  );

  app.post<OrgPost>('/orgs/:org_id/members/:user_id/role', orgPost, (request, reply) =>
    kit.orgAction(request, reply, async (access) => {
      const role = ROLES.find((r) => r === field(request.body, 'role'));
      if (!role) throw new PageError('Pick a role.');
      const member = await orgs.changeRole(access, request.params.user_id ?? '', role, requestMeta(request));
      return { flash: { kind: 'ok', text: `${member.email} is now ${member.role}.` } };
    }),
  );

  app.post<OrgPost>('/orgs/:org_id/members/:user_id/remove', orgPost, (request, reply) =>
    kit.orgAction(request, reply, async (access, auth) => {
      const userId = request.params.user_id ?? '';
      await orgs.removeMember(access, userId, requestMeta(request));
      if (userId === auth.user.id) {
        return { to: '/keys', flash: { kind: 'ok', text: 'You left the organization.' } };
      }
      return { flash: { kind: 'ok', text: 'Member removed; their keys here stopped working.' } };
    }),
  );

  app.post<OrgPost>('/orgs/:org_id/projects', orgPost, (request, reply) =>
    kit.orgAction(request, reply, async (access) => {
      const name = textInput(field(request.body, 'name'), 100);
      if (!name) throw new PageError('Give the project a name (up to 100 characters).');
      const project = await orgs.createProject(access, name, requestMeta(request));
      return { flash: { kind: 'ok', text: `Project “${project.name}” created.` } };
    }),
  );

  app.post<OrgPost>('/orgs/:org_id/projects/:project_id/delete', orgPost, (request, reply) =>
    kit.orgAction(request, reply, async (access, auth) => {
      const project = await ctx.store.orgs.project(request.params.project_id ?? '');
      if (!project || project.org_id !== access.orgId) throw new HttpError('NOT_FOUND', 'No such project.');
      await orgs.deleteProject(auth, project.id, requestMeta(request));
      return { flash: { kind: 'ok', text: `Project “${project.name}” deleted.` } };
    }),
  );
}
