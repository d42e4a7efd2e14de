import type { FastifyInstance } from 'fastify';
import type { MeResponse } from '../../core/types.js';
import { requireAuth } from '../plugins/auth.js';
import { OrgService } from '../services/orgs.js';
import { errorResponses, idSchema, userSchema } from './schemas.js';

const refSchema = {
  type: 'object',
  required: ['id', 'name'],
  properties: { id: { type: 'string' }, name: { type: 'string' } },
} as const;

export async function meRoutes(app: FastifyInstance): Promise<void> {
  const orgs = new OrgService(app.breeze);
  app.get<{ Querystring: { org_id?: string } }>(
    '/v1/me',
    {
      config: { auth: 'required' },
      schema: {
        summary: 'Who is calling: the user, the credential used, its organization and project',
        tags: ['account'],
        querystring: {
          type: 'object',
          properties: { org_id: { ...idSchema, description: 'session or JWT: an organization of the user' } },
        },
        response: {
          200: {
            type: 'object',
            required: ['user', 'auth'],
            properties: {
              user: userSchema,
              auth: {
                type: 'object',
                required: ['type', 'scopes'],
                properties: {
                  type: { type: 'string', enum: ['api_key', 'jwt', 'session'] },
                  key_id: { type: 'string' },
                  scopes: { type: 'array', items: { type: 'string' } },
                },
              },
              org: {
                ...refSchema,
                required: ['id', 'name', 'role'],
                properties: { ...refSchema.properties, role: { type: 'string' } },
              },
              project: refSchema,
            },
          },
          ...errorResponses(400, 401, 404, 429),
        },
      },
    },
    async (request): Promise<MeResponse> => {
      const auth = requireAuth(request);
      const base = { user: auth.user };
      // an API key: everything comes from the cached verification record (no query on a cache hit)
      if (auth.type === 'api_key' && auth.org && auth.project && request.query.org_id === undefined) {
        return {
          ...base,
          auth: { type: auth.type, ...(auth.keyId ? { key_id: auth.keyId } : {}), scopes: auth.scopes },
          org: auth.org,
          project: auth.project,
        };
      }
      const access = await orgs.defaultAccess(auth, request.query.org_id);
      const org = await orgs.get(access.orgId);
      return {
        ...base,
        auth: { type: auth.type, ...(auth.keyId ? { key_id: auth.keyId } : {}), scopes: access.scopes },
        org: { id: org.id, name: org.name, role: access.role },
        ...(auth.type === 'api_key' && auth.project ? { project: auth.project } : {}),
      };
    },
  );
}
