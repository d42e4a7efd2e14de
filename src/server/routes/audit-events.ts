import type { FastifyInstance } from 'fastify';
import { requireAuth } from '../plugins/auth.js';
import { AUDIT_ACTIONS, type AuditEvent } from '../services/audit.js';
import { readAuditLog } from '../services/audit-log.js';
import { OrgService } from '../services/orgs.js';
import { dropEmptyQueryParams, errorResponses, idSchema } from './schemas.js';

interface AuditQuery {
  org_id?: string;
  action?: string;
  key_id?: string;
  actor_id?: string;
  since?: string;
  limit?: number;
  cursor?: string;
}

export const AUDIT_PAGE_MAX = 200;
// (the query's meaning and visibility: services/audit-log.ts, shared with the dashboard)
export { parseSince } from '../services/audit-log.js';

const actorSchema = {
  type: 'object',
  required: ['type', 'id'],
  properties: {
    type: { type: 'string', enum: ['user', 'key', 'system'] },
    id: { type: 'string' },
    email: { type: 'string' },
    key_id: { type: 'string' },
  },
} as const;

export const auditEventSchema = {
  type: 'object',
  required: ['id', 'at', 'action', 'org_id', 'actor', 'target', 'ip', 'user_agent', 'request_id', 'details'],
  properties: {
    id: { type: 'string' },
    at: { type: 'string', format: 'date-time' },
    action: { type: 'string' },
    org_id: { type: 'string' },
    project_id: { type: 'string' },
    actor: actorSchema,
    target: {
      type: 'object',
      required: ['type', 'id'],
      properties: { type: { type: 'string' }, id: { type: 'string' } },
    },
    ip: { type: ['string', 'null'] },
    user_agent: { type: ['string', 'null'] },
    request_id: { type: ['string', 'null'] },
    details: { type: 'object', additionalProperties: true },
  },
} as const;

/** `GET /v1/audit-events`: the audit log of one organization, newest first, filtered, paged. */
export async function auditRoutes(app: FastifyInstance): Promise<void> {
  const orgs = new OrgService(app.breeze);

  app.get<{ Querystring: AuditQuery }>(
    '/v1/audit-events',
    {
      config: { auth: 'required' },
      // `?since=&cursor=`: an empty parameter is one not given
      preValidation: dropEmptyQueryParams,
      schema: {
        summary: 'The audit log of an organization, newest first (owners and admins: all; others: their own)',
        tags: ['audit'],
        querystring: {
          type: 'object',
          properties: {
            org_id: idSchema,
            action: { type: 'string', enum: [...AUDIT_ACTIONS] },
            key_id: idSchema,
            actor_id: idSchema,
            since: { type: 'string', minLength: 1, maxLength: 64 },
            limit: { type: 'integer', minimum: 1, maximum: AUDIT_PAGE_MAX, default: 50 },
            cursor: { type: 'string', minLength: 1, maxLength: 200 },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['data', 'next_cursor'],
            properties: {
              data: { type: 'array', items: auditEventSchema },
              next_cursor: { type: ['string', 'null'] },
            },
          },
          ...errorResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request): Promise<{ data: AuditEvent[]; next_cursor: string | null }> => {
      const { events, nextCursor } = await readAuditLog(app.breeze, orgs, requireAuth(request), {
        ...request.query,
        limit: request.query.limit ?? 50,
      });
      return { data: events, next_cursor: nextCursor };
    },
  );
}
