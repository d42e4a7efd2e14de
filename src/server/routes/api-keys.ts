import type { FastifyInstance, FastifyReply } from 'fastify';
import { HttpError } from '../../core/errors.js';
import type { ApiKeyInfo, KeyListResponse, KeyStatus, Scope } from '../../core/types.js';
import { normaliseScopes } from '../../core/types.js';
import {
  authInOrg,
  authorizeKeyAction,
  authorizeKeyVisibility,
  authorizeOrg,
  isAllowed,
  requireKeyManager,
  requireScopesWithin,
  rotationGrace,
} from '../authz.js';
import type { AuthContext } from '../context.js';
import { requireAuth } from '../plugins/auth.js';
import { byRequest } from '../services/audit.js';
import { OrgService } from '../services/orgs.js';
import { type KeyRow, toKeyInfo } from '../store/keys.js';
import {
  createdKeySchema,
  errorResponses,
  idSchema,
  keyIdParams,
  keySchema,
  scopesSchema,
  textSchema,
} from './schemas.js';

const MAX_EXPIRY_S = 10 * 365 * 86400;
const DEFAULT_GRACE_S = 3600;

interface CreateBody {
  name: string;
  scopes?: Scope[];
  expires_at?: string;
  expires_in_s?: number;
  project_id?: string;
}
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

function notFound(): HttpError {
  return new HttpError('NOT_FOUND', 'No such API key.');
}

function encodeCursor(id: string): string {
  return Buffer.from(id, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^key_[0-9A-Z]{26}$/.test(id)) {
    throw new HttpError('VALIDATION_FAILED', 'Invalid cursor: pass the next_cursor of a previous page.', {
      details: [{ field: 'querystring.cursor', message: 'is not a cursor issued by this server' }],
    });
  }
  return id;
}

export async function apiKeyRoutes(app: FastifyInstance): Promise<void> {
  const { store, keys, clock } = app.breeze;
  const info = (row: KeyRow): ApiKeyInfo => toKeyInfo(row, clock());
  const orgs = new OrgService(app.breeze);

  /**
   * A key the caller may see, and the caller as it acts in that key's organization (scopes capped
   * by its role there). A key of an organization the caller is no member of, or one another member
   * created when the caller does not manage the organization's keys, is 404.
   */
  async function loadKey(auth: AuthContext, keyId: string): Promise<{ row: KeyRow; auth: AuthContext }> {
    const row = await store.keys.get(keyId);
    if (!row?.org_id) throw notFound();
    const access = await orgs.access(auth, row.org_id).catch((err: unknown) => {
      throw err instanceof HttpError && err.code === 'NOT_FOUND' ? notFound() : err;
    });
    authorizeKeyVisibility(access, row);
    return { row, auth: authInOrg(access) };
  }

  const common = { config: { auth: 'required' as const } };

  app.get<{ Querystring: ListQuery }>(
    '/v1/api-keys',
    {
      ...common,
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
          ...errorResponses(400, 401, 403, 429),
        },
      },
    },
    async (request): Promise<KeyListResponse> => {
      const caller = requireAuth(request);
      const { project_id: projectId, org_id: orgId } = request.query;
      const access = projectId
        ? (await orgs.project(caller, projectId)).access
        : await orgs.defaultAccess(caller, orgId);
      if (projectId && orgId && access.orgId !== orgId) throw new HttpError('NOT_FOUND', 'No such project.');
      const auth = authInOrg(access);
      requireKeyManager(auth);
      const limit = request.query.limit ?? 50;
      // owners and admins see every key of the organization, other members their own
      const all = isAllowed(access, 'keys.manage_others');
      const filter = {
        orgId: access.orgId,
        ...(all ? {} : { userId: caller.user.id }),
        ...(projectId ? { projectId } : {}),
      };
      const rows = await store.keys.list(filter, {
        limit: limit + 1,
        beforeId: request.query.cursor ? decodeCursor(request.query.cursor) : undefined,
        status: request.query.status,
        now: clock(),
      });
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        data: page.map(info),
        next_cursor: rows.length > limit && last ? encodeCursor(last.id) : null,
      };
    },
  );

  app.post<{ Body: CreateBody }>(
    '/v1/api-keys',
    {
      ...common,
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
      const body = request.body;
      // default: the calling key's project; for a session or JWT, the personal `default` project
      const { projectId, access } = await orgs.keyProject(caller, body.project_id);
      const auth = authInOrg(access);
      requireKeyManager(auth);
      authorizeOrg(access, 'keys.create');
      const scopes = normaliseScopes(body.scopes ?? ['read']);
      requireScopesWithin(auth, scopes);
      const expiresAt = resolveExpiry(body, clock());
      const { row, apiKey } = await keys.mint({
        userId: caller.user.id,
        projectId,
        name: body.name.trim(),
        scopes,
        expiresAt,
        createdVia: 'api',
        by: byRequest(request, caller),
      });
      return reply.code(201).send({ ...info(row), api_key: apiKey });
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
      const { row, auth } = await loadKey(requireAuth(request), request.params.key_id);
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
      const { row, auth } = await loadKey(caller, request.params.key_id);
      authorizeKeyAction(auth, row, 'update');
      const patch: Partial<KeyRow> = {};
      if (request.body.name !== undefined) patch.name = request.body.name.trim();
      if (request.body.scopes !== undefined) {
        const scopes = normaliseScopes(request.body.scopes);
        requireScopesWithin(auth, scopes);
        patch.scopes = scopes.join(' ');
      }
      if (Object.keys(patch).length === 0) return info(row);
      const updated = await keys.update(row, patch, byRequest(request, caller));
      if (!updated) throw notFound();
      return info(updated);
    },
  );

  app.post<{ Params: KeyParams; Body: RotateBody | undefined }>(
    '/v1/api-keys/:key_id/rotate',
    {
      ...common,
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
      const { row, auth } = await loadKey(caller, request.params.key_id);
      // the successor inherits the rotated key's scopes and its plaintext goes to the caller: rotating
      // a wider key than one's own would mint a key with scopes the caller does not hold
      authorizeKeyAction(auth, row, 'rotate');
      const grace = rotationGrace(auth, row, request.body?.grace_period_s ?? DEFAULT_GRACE_S);
      const { minted, previous } = await keys.rotate(row, grace, byRequest(request, caller));
      return reply.code(201).send({ ...info(minted.row), api_key: minted.apiKey, previous: info(previous) });
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
        const { row, auth } = await loadKey(caller, request.params.key_id);
        authorizeKeyAction(auth, row, action);
        const disabledAt = action === 'disable' ? (row.disabled_at ?? clock().toISOString()) : null;
        if (disabledAt === row.disabled_at) return info(row);
        const updated = await keys.setDisabled(row, disabledAt, byRequest(request, caller));
        if (!updated) throw notFound();
        return info(updated);
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
      const { row, auth } = await loadKey(caller, request.params.key_id);
      authorizeKeyAction(auth, row, 'delete');
      await keys.delete(row, byRequest(request, caller));
      return reply.code(204).send();
    },
  );
}

function resolveExpiry(body: CreateBody, now: Date): string | null {
  if (body.expires_at !== undefined && body.expires_in_s !== undefined) {
    throw new HttpError('VALIDATION_FAILED', 'Give expires_at or expires_in_s, not both.', {
      details: [{ field: 'body.expires_at', message: 'conflicts with expires_in_s' }],
    });
  }
  if (body.expires_in_s !== undefined)
    return new Date(now.getTime() + body.expires_in_s * 1000).toISOString();
  if (body.expires_at !== undefined) {
    const t = Date.parse(body.expires_at);
    if (Number.isNaN(t) || t <= now.getTime() || t > now.getTime() + MAX_EXPIRY_S * 1000) {
      throw new HttpError('VALIDATION_FAILED', 'expires_at must be in the future (at most 10 years ahead).', {
        details: [{ field: 'body.expires_at', message: 'out of range' }],
      });
    }
    return new Date(t).toISOString();
  }
  return null;
}
