import type { FastifyInstance } from 'fastify';
import type { JwtService } from '../jwt.js';

export interface JwksRoutesOptions {
  jwt: JwtService;
}

/** `GET /.well-known/jwks.json`: the public keys that verify Breeze JWTs (current and recently retired). */
export async function jwksRoutes(app: FastifyInstance, opts: JwksRoutesOptions): Promise<void> {
  // signing keys are created on first start, not on the first request
  await opts.jwt.init();

  app.get(
    '/.well-known/jwks.json',
    {
      schema: {
        summary: 'JSON Web Key Set of the JWT signing keys',
        tags: ['auth'],
        response: {
          200: {
            type: 'object',
            required: ['keys'],
            properties: {
              keys: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['kty', 'crv', 'x', 'kid', 'alg', 'use'],
                  properties: {
                    kty: { type: 'string' },
                    crv: { type: 'string' },
                    x: { type: 'string' },
                    kid: { type: 'string' },
                    alg: { type: 'string' },
                    use: { type: 'string' },
                  },
                },
              },
            },
          },
        },
      },
    },
    async (_request, reply) => {
      // short: verifiers that see an unknown kid should fetch again anyway
      reply.header('cache-control', 'public, max-age=60');
      return opts.jwt.jwks();
    },
  );
}
