import type { FastifyInstance } from 'fastify';
import type { Role } from '../../core/types.js';
import { requireAuth } from '../plugins/auth.js';
import { requestMeta } from '../services/audit.js';
import { OrgService } from '../services/orgs.js';
import { listOf, memberSchema, memberView, orgIdParams, roleSchema } from './org-schemas.js';
import { errorResponses, idSchema } from './schemas.js';

interface MemberParams {
  org_id: string;
  user_id: string;
}

const memberParams = {
  type: 'object',
  required: ['org_id', 'user_id'],
  properties: { org_id: idSchema, user_id: idSchema },
} as const;

/** Members of an organization: list, change a role, remove (or leave). */
export async function memberRoutes(app: FastifyInstance): Promise<void> {
  const orgs = new OrgService(app.breeze);
  const common = { config: { auth: 'required' as const } };

  app.get<{ Params: { org_id: string } }>(
    '/v1/orgs/:org_id/members',
    {
      ...common,
      schema: {
        summary: 'Members of an organization (any member)',
        tags: ['orgs'],
        params: orgIdParams,
        response: { 200: listOf(memberSchema), ...errorResponses(401, 403, 404, 429) },
      },
    },
    async (request) => {
      const access = await orgs.access(requireAuth(request), request.params.org_id);
      return { data: (await orgs.members(access)).map(memberView) };
    },
  );

  app.patch<{ Params: MemberParams; Body: { role: Role } }>(
    '/v1/orgs/:org_id/members/:user_id',
    {
      ...common,
      schema: {
        summary: "Change a member's role (owner, admin; an admin cannot touch owners; the last owner stays)",
        tags: ['orgs'],
        params: memberParams,
        body: {
          type: 'object',
          required: ['role'],
          properties: { role: roleSchema },
        },
        response: { 200: memberSchema, ...errorResponses(400, 401, 403, 404, 409, 429) },
      },
    },
    async (request) => {
      const access = await orgs.access(requireAuth(request), request.params.org_id);
      return memberView(
        await orgs.changeRole(access, request.params.user_id, request.body.role, requestMeta(request)),
      );
    },
  );

  app.delete<{ Params: MemberParams }>(
    '/v1/orgs/:org_id/members/:user_id',
    {
      ...common,
      schema: {
        summary: 'Remove a member, or leave (owner, admin, or the member themself; the last owner stays)',
        tags: ['orgs'],
        params: memberParams,
        response: { 204: { type: 'null' }, ...errorResponses(401, 403, 404, 409, 429) },
      },
    },
    async (request, reply) => {
      const access = await orgs.access(requireAuth(request), request.params.org_id);
      await orgs.removeMember(access, request.params.user_id, requestMeta(request));
      return reply.code(204).send();
    },
  );
}
