import type { FastifyInstance } from 'fastify';
import type { MeResponse } from '../../core/types.js';
import type { AuthContext } from '../context.js';
import { requireAuth } from '../plugins/auth.js';
import { OrgService } from '../services/orgs.js';
import { errorResponses, idSchema, userSchema } from './schemas.js';

const JSON_UTF8 = 'application/json; charset=utf-8';

const refSchema = {
  type: 'object',
  required: ['id', 'name'],
  properties: { id: { type: 'string' }, name: { type: 'string' } },
} as const;

export async function meRoutes(app: FastifyInstance): Promise<void> {
  const orgs = new OrgService(app.breeze);
  // The answer for a cached key's caller, serialised once: auth contexts are built once per
  // verified row (a new row, a new context), so the bytes stay right for as long as the context
  // lives. Sending the JSON text skips the serialiser on every request (about 3% of /v1/me's
  // throughput); the text comes from this route's own response serialiser, so it is the same.
  const ofKey = new WeakMap<AuthContext, string>();

  async function meOf(auth: AuthContext, orgId: string | undefined): Promise<MeResponse> {
    const access = await orgs.defaultAccess(auth, orgId);
    const org = await orgs.get(access.orgId);
    return {
      user: auth.user,
      auth: { type: auth.type, ...(auth.keyId ? { key_id: auth.keyId } : {}), scopes: access.scopes },
      org: { id: org.id, name: org.name, role: access.role },
      // the key's project belongs to the key's organization only
      ...(auth.type === 'api_key' && auth.project && auth.org?.id === org.id
        ? { project: auth.project }
        : {}),
    };
  }

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
    // not async: an API key's answer is ready at once (no promise per request)
    (request, reply): string | Promise<MeResponse> => {
      const auth = requireAuth(request);
      // an API key: everything comes from the cached verification record (no query on a cache hit)
      if (auth.type === 'api_key' && auth.org && auth.project && request.query.org_id === undefined) {
        let json = ofKey.get(auth);
        if (json === undefined) {
          const me: MeResponse = {
            user: auth.user,
            auth: { type: auth.type, ...(auth.keyId ? { key_id: auth.keyId } : {}), scopes: auth.scopes },
            org: auth.org,
            project: auth.project,
          };
          json = String(reply.serialize(me)); // the route's serialiser answers text
          ofKey.set(auth, json);
        }
        // a string with a JSON content type goes out as it is
        reply.header('content-type', JSON_UTF8);
        return json;
      }
      return meOf(auth, request.query.org_id);
    },
  );
}
