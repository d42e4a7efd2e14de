import type { FastifyInstance, FastifyReply } from 'fastify';
import type { KeyListResponse, KeyStatus, Scope } from '../../core/types.js';
import { authorizeKeyAction } from '../authz.js';
import { requireAuth } from '../plugins/auth.js';
import { ApiKeyOps, type CreateKeyInput, DEFAULT_GRACE_S, MAX_EXPIRY_S } from '../services/api-keys.js';
import { byRequest } from '../services/audit.js';
import { requestsLast24h } from '../services/usage.js';
import {
  createdKeySchema,
  dropEmptyQueryParams,
  errorResponses,
  idSchema,
  keyIdParams,
  keySchema,
  nullMeansAbsent,
  scopesSchema,
  textSchema,
} from './schemas.js';

type CreateBody = CreateKeyInput;
interface PatchBody {
  name?: string;
  scopes?: Scope[];
}
interface RotateBody {
  grace_period_s?: number;
}
interface ListQuery {
  limit?: number;
  cursor?: string;
  status?: KeyStatus;
  project_id?: string;
  org_id?: string;
}
interface KeyParams {
  key_id: string;
}

const nameSchema = textSchema(200);
const noStore = { 'cache-control': 'no-store' };

export async function apiKeyRoutes(app: FastifyInstance): Promise<void> {
  // the key operations live in services/api-keys.ts, shared with the dashboard pages
  const ops = new ApiKeyOps(app.breeze);
  const info = ops.info.bind(ops);

  const common = { config: { auth: 'required' as const } };

  app.get<{ Querystring: ListQuery }>(
    '/v1/api-keys',
    {
      ...common,
      // `?limit=&cursor=&status=` (API.md's own spelling, or a client filling a URL template): an
      // empty parameter is one not given, as an empty cursor already was, not a limit of "" (400)
      preValidation: dropEmptyQueryParams,
      schema: {
        summary: "List the caller's keys, newest first",
        tags: ['api-keys'],
        querystring: {
          type: 'object',
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 },
            cursor: { type: 'string', maxLength: 200 },
            status: { type: 'string', enum: ['active', 'expiring', 'expired', 'disabled'] },
            project_id: idSchema,
            org_id: idSchema,
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['data', 'next_cursor'],
            properties: {
              data: { type: 'array', items: keySchema },
              next_cursor: { type: ['string', 'null'] },
            },
          },
          ...errorResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request): Promise<KeyListResponse> => {
      const { rows, nextCursor } = await ops.list(requireAuth(request), {
        ...request.query,
        limit: request.query.limit ?? 50,
      });
      const recent = await requestsLast24h(
        app,
        rows.map((r) => r.id),
      );
      return {
        data: rows.map((r) => ({ ...info(r), requests_24h: recent.get(r.id) ?? 0 })),
        next_cursor: nextCursor,
      };
    },
  );

  app.post<{ Body: CreateBody }>(
    '/v1/api-keys',
    {
      ...common,
      // `expires_at: null` too: the key object's own "never", sent back as it was read
      preValidation: nullMeansAbsent('scopes', 'project_id', 'expires_at', 'expires_in_s'),
      schema: {
        summary: 'Create a key; the plaintext is in this response only',
        tags: ['api-keys'],
        body: {
          type: 'object',
          required: ['name'],
          properties: {
            name: nameSchema,
            scopes: scopesSchema,
            expires_at: { type: 'string', format: 'date-time' },
            expires_in_s: { type: 'integer', minimum: 1, maximum: MAX_EXPIRY_S },
            project_id: idSchema,
          },
        },
        response: { 201: createdKeySchema, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request, reply) => {
      const caller = requireAuth(request);
      const { row, apiKey } = await ops.create(caller, request.body, byRequest(request, caller));
      // the plaintext is in this answer only: no cache may keep it (as for the other secret answers)
      return reply
        .code(201)
        .headers(noStore)
        .send({ ...info(row), api_key: apiKey });
    },
  );

  app.get<{ Params: KeyParams }>(
    '/v1/api-keys/:key_id',
    {
      ...common,
      schema: {
        summary: 'Read a key (a key may read itself)',
        tags: ['api-keys'],
        params: keyIdParams,
        response: { 200: keySchema, ...errorResponses(401, 403, 404, 429) },
      },
    },
    async (request) => {
      const { row, auth } = await ops.load(requireAuth(request), request.params.key_id);
      authorizeKeyAction(auth, row, 'read');
      return info(row);
    },
  );

  app.patch<{ Params: KeyParams; Body: PatchBody }>(
    '/v1/api-keys/:key_id',
    {
      ...common,
      schema: {
        summary: 'Rename a key or change its scopes',
        tags: ['api-keys'],
        params: keyIdParams,
        body: { type: 'object', properties: { name: nameSchema, scopes: scopesSchema } },
        response: { 200: keySchema, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => {
      const caller = requireAuth(request);
      return info(await ops.update(caller, request.params.key_id, request.body, byRequest(request, caller)));
    },
  );

  app.post<{ Params: KeyParams; Body: RotateBody | undefined }>(
    '/v1/api-keys/:key_id/rotate',
    {
      ...common,
      // `grace_period_s: null` is the default grace, like the field left out
      preValidation: nullMeansAbsent('grace_period_s'),
      schema: {
        summary:
          'Rotate: a new key with the same name, scopes and expiry; the old one lives on for the grace period',
        tags: ['api-keys'],
        params: keyIdParams,
        body: {
          type: ['object', 'null'],
          properties: { grace_period_s: { type: 'integer', minimum: 0, maximum: MAX_EXPIRY_S } },
        },
        response: {
          201: {
            ...createdKeySchema,
            required: [...createdKeySchema.required, 'previous'],
            properties: { ...createdKeySchema.properties, previous: keySchema },
          },
          ...errorResponses(400, 401, 403, 404, 409, 429),
        },
      },
    },
    async (request, reply) => {
      const caller = requireAuth(request);
      const { row, apiKey, previous } = await ops.rotate(
        caller,
        request.params.key_id,
        request.body?.grace_period_s ?? DEFAULT_GRACE_S,
        byRequest(request, caller),
      );
      return reply
        .code(201)
        .headers(noStore)
        .send({ ...info(row), api_key: apiKey, previous: info(previous) });
    },
  );

  for (const action of ['disable', 'enable'] as const) {
    app.post<{ Params: KeyParams }>(
      `/v1/api-keys/:key_id/${action}`,
      {
        ...common,
        schema: {
          summary:
            action === 'disable' ? 'Disable a key (refused until enabled)' : 'Re-enable a disabled key',
          tags: ['api-keys'],
          params: keyIdParams,
          response: { 200: keySchema, ...errorResponses(401, 403, 404, 429) },
        },
      },
      async (request) => {
        const caller = requireAuth(request);
        return info(await ops.setEnabled(caller, request.params.key_id, action, byRequest(request, caller)));
      },
    );
  }

  app.delete<{ Params: KeyParams }>(
    '/v1/api-keys/:key_id',
    {
      ...common,
      schema: {
        summary: 'Delete a key for good',
        tags: ['api-keys'],
        params: keyIdParams,
        response: { 204: { type: 'null' }, ...errorResponses(401, 403, 404, 429) },
      },
    },
    async (request, reply: FastifyReply) => {
      const caller = requireAuth(request);
      await ops.delete(caller, request.params.key_id, byRequest(request, caller));
      return reply.code(204).send();
    },
  );
}
