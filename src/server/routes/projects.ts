import type { FastifyInstance } from 'fastify';
import { requireAuth } from '../plugins/auth.js';
import { requestMeta } from '../services/audit.js';
import { OrgService } from '../services/orgs.js';
import { listOf, orgIdParams, projectNameSchema, projectSchema } from './org-schemas.js';
import { errorResponses, idSchema } from './schemas.js';

/** Projects of an organization: list (any member), create and delete (owner, admin). */
export async function projectRoutes(app: FastifyInstance): Promise<void> {
  const orgs = new OrgService(app.breeze);
  const common = { config: { auth: 'required' as const } };

  app.get<{ Params: { org_id: string } }>(
    '/v1/orgs/:org_id/projects',
    {
      ...common,
      schema: {
        summary: 'Projects of an organization (any member)',
        tags: ['projects'],
        params: orgIdParams,
        response: { 200: listOf(projectSchema), ...errorResponses(401, 403, 404, 429) },
      },
    },
    async (request) => {
      const access = await orgs.access(requireAuth(request), request.params.org_id);
      return { data: await orgs.projects(access) };
    },
  );

  app.post<{ Params: { org_id: string }; Body: { name: string } }>(
    '/v1/orgs/:org_id/projects',
    {
      ...common,
      schema: {
        summary: 'Create a project (owner, admin); names are unique in the organization',
        tags: ['projects'],
        params: orgIdParams,
        body: {
          type: 'object',
          required: ['name'],
          properties: { name: projectNameSchema },
        },
        response: { 201: projectSchema, ...errorResponses(400, 401, 403, 404, 409, 429) },
      },
    },
    async (request, reply) => {
      const access = await orgs.access(requireAuth(request), request.params.org_id);
      return reply
        .code(201)
        .send(await orgs.createProject(access, request.body.name.trim(), requestMeta(request)));
    },
  );

  app.delete<{ Params: { project_id: string } }>(
    '/v1/projects/:project_id',
    {
      ...common,
      schema: {
        summary: 'Delete a project (owner, admin); 409 while it has keys, and for "default"',
        tags: ['projects'],
        params: { type: 'object', required: ['project_id'], properties: { project_id: idSchema } },
        response: { 204: { type: 'null' }, ...errorResponses(401, 403, 404, 409, 429) },
      },
    },
    async (request, reply) => {
      await orgs.deleteProject(requireAuth(request), request.params.project_id, requestMeta(request));
      return reply.code(204).send();
    },
  );
}
