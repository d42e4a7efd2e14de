import type { FastifyInstance } from 'fastify';
import type { MeResponse } from '../../core/types.js';
import { requireAuth } from '../plugins/auth.js';
import { errorResponses, userSchema } from './schemas.js';

export async function meRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    '/v1/me',
    {
      config: { auth: 'required' },
      schema: {
        summary: 'Who is calling: the user and the credential used',
        tags: ['account'],
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
            },
          },
          ...errorResponses(401, 429),
        },
      },
    },
    async (request): Promise<MeResponse> => {
      const auth = requireAuth(request);
      return {
        user: auth.user,
        auth: { type: auth.type, ...(auth.keyId ? { key_id: auth.keyId } : {}), scopes: auth.scopes },
      };
    },
  );
}
