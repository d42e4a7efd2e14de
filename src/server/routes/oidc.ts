import type { FastifyInstance } from 'fastify';
import { HttpError } from '../../core/errors.js';
import { requireAuth } from '../plugins/auth.js';
import { perIpKey } from '../plugins/rate-limit.js';
import { byRequest, requestMeta } from '../services/audit.js';
import { CLAIM_NAME_PATTERN, type CreateTrustInput, OIDC_MAX_TTL_S, OidcService } from '../services/oidc.js';
import { OidcRefusal } from '../services/oidc-issuer.js';
import { toKeyInfo } from '../store/keys.js';
import { listOf, orgIdParams } from './org-schemas.js';
import { errorResponses, idSchema, keySchema, scopesSchema, textSchema } from './schemas.js';

/** Exchanges per minute per IP (a CI fleet behind one NAT address still gets one a second). */
export const EXCHANGES_PER_IP = { max: 60, timeWindow: 60_000 } as const;

const timestamp = { type: 'string', format: 'date-time' } as const;

export const oidcTrustSchema = {
  type: 'object',
  required: [
    'id',
    'org_id',
    'project_id',
    'issuer',
    'audience',
    'claims',
    'scopes',
    'ttl_s',
    'created_by',
    'created_at',
  ],
  properties: {
    id: { type: 'string' },
    org_id: { type: 'string' },
    project_id: { type: 'string' },
    issuer: { type: 'string' },
    audience: { type: 'string' },
    claims: { type: 'object', additionalProperties: { type: 'string' } },
    scopes: { type: 'array', items: { type: 'string' } },
    ttl_s: { type: 'integer' },
    created_by: { type: 'string' },
    created_at: timestamp,
  },
} as const;

const createTrustBody = {
  type: 'object',
  required: ['issuer', 'claims'],
  properties: {
    issuer: textSchema(512),
    audience: textSchema(512),
    claims: {
      type: 'object',
      minProperties: 1,
      maxProperties: 20,
      propertyNames: { type: 'string', pattern: CLAIM_NAME_PATTERN },
      additionalProperties: textSchema(256),
    },
    project_id: idSchema,
    scopes: { ...scopesSchema, minItems: 1 },
    ttl_s: { type: 'integer', minimum: 1, maximum: OIDC_MAX_TTL_S },
  },
} as const;

const exchangeBody = {
  type: 'object',
  required: ['token'],
  properties: {
    // CI tokens are a few kB; one that is not a JWT fails like any other (401, PLATFORM.md "CI
    // identity": a failure does not say which check failed)
    token: { type: 'string', minLength: 1, maxLength: 16_384 },
    org_id: idSchema,
  },
} as const;

/** PLATFORM.md "CI identity": trust policies per organization and the OIDC token exchange. */
export async function oidcRoutes(app: FastifyInstance): Promise<void> {
  const oidc = new OidcService(app.breeze);
  const common = { config: { auth: 'required' as const } };

  app.get<{ Params: { org_id: string } }>(
    '/v1/orgs/:org_id/oidc-trusts',
    {
      ...common,
      schema: {
        summary: 'OIDC trust policies of an organization (owner, admin)',
        tags: ['oidc'],
        params: orgIdParams,
        response: { 200: listOf(oidcTrustSchema), ...errorResponses(401, 403, 404, 429) },
      },
    },
    async (request) => ({ data: await oidc.list(requireAuth(request), request.params.org_id) }),
  );

  app.post<{ Params: { org_id: string }; Body: CreateTrustInput }>(
    '/v1/orgs/:org_id/oidc-trusts',
    {
      ...common,
      schema: {
        summary: 'Trust an OIDC issuer to mint short-lived keys (owner, admin)',
        tags: ['oidc'],
        params: orgIdParams,
        body: createTrustBody,
        response: { 201: oidcTrustSchema, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request, reply) => {
      const auth = requireAuth(request);
      const trust = await oidc.create(auth, request.params.org_id, request.body, byRequest(request, auth));
      return reply.code(201).send(trust);
    },
  );

  app.delete<{ Params: { trust_id: string } }>(
    '/v1/oidc-trusts/:trust_id',
    {
      ...common,
      schema: {
        summary: 'Delete an OIDC trust policy (owner, admin)',
        tags: ['oidc'],
        params: { type: 'object', required: ['trust_id'], properties: { trust_id: idSchema } },
        response: { 204: { type: 'null' }, ...errorResponses(401, 403, 404, 429) },
      },
    },
    async (request, reply) => {
      const auth = requireAuth(request);
      await oidc.delete(auth, request.params.trust_id, byRequest(request, auth));
      return reply.code(204).send();
    },
  );

  app.post<{ Body: { token: string; org_id?: string } }>(
    '/v1/oidc/exchange',
    {
      config: { rateLimit: { ...EXCHANGES_PER_IP, keyGenerator: perIpKey('oidc-exchange-ip') } },
      schema: {
        summary: "Trade a CI job's OIDC token for a short-lived key (no credential)",
        tags: ['oidc'],
        body: exchangeBody,
        response: {
          200: {
            type: 'object',
            required: ['api_key', 'key', 'trust_id'],
            properties: {
              api_key: { type: 'string' },
              key: keySchema,
              trust_id: { type: 'string' },
            },
          },
          ...errorResponses(400, 401, 429),
        },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      try {
        const { minted, trust } = await oidc.exchange(
          request.body.token,
          request.body.org_id,
          requestMeta(request),
        );
        request.log.info({ trust_id: trust.id, key_id: minted.row.id }, 'oidc exchange: key minted');
        const key = toKeyInfo(minted.row, app.breeze.clock());
        return { api_key: minted.apiKey, key, trust_id: trust.id };
      } catch (err) {
        if (!(err instanceof OidcRefusal)) throw err;
        // the log says which check failed; the caller only that it did (never the token)
        request.log.warn({ reason: err.reason, ...err.details }, 'oidc exchange refused');
        throw new HttpError('AUTH_REQUIRED', 'The OIDC token was not accepted.');
      }
    },
  );
}
