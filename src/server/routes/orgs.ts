import type { FastifyInstance } from 'fastify';
import { requireAuth } from '../plugins/auth.js';
import { OrgService } from '../services/orgs.js';
import { listOf, orgNameSchema, orgSchema } from './org-schemas.js';
import { errorResponses } from './schemas.js';

/** `GET /v1/orgs`, `POST /v1/orgs`: the caller's organizations. */
export async function orgRoutes(app: FastifyInstance): Promise<void> {
  const orgs = new OrgService(app.breeze);
  const common = { config: { auth: 'required' as const } };

  app.get(
    '/v1/orgs',
    {
      ...common,
      schema: {
        summary: "The caller's organizations, with its role in each",
        tags: ['orgs'],
        response: { 200: listOf(orgSchema), ...errorResponses(401, 429) },
      },
    },
    async (request) => ({ data: await orgs.list(requireAuth(request)) }),
  );

  app.post<{ Body: { name: string } }>(
    '/v1/orgs',
    {
      ...common,
      schema: {
        summary: 'Create an organization (the caller becomes its owner; it gets project "default")',
        tags: ['orgs'],
        body: {
          type: 'object',
          required: ['name'],
          properties: { name: orgNameSchema },
        },
        response: { 201: orgSchema, ...errorResponses(400, 401, 403, 429) },
      },
    },
    async (request, reply) => {
      const org = await orgs.create(requireAuth(request), request.body.name.trim());
      return reply.code(201).send(org);
    },
  );
}
