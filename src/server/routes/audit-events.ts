import type { FastifyInstance } from 'fastify';
import { HttpError } from '../../core/errors.js';
import { auditScope } from '../authz.js';
import { requireAuth } from '../plugins/auth.js';
import { AUDIT_ACTIONS, type AuditEvent } from '../services/audit.js';
import { OrgService } from '../services/orgs.js';
import { errorResponses, idSchema } from './schemas.js';

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
const CURSOR_ID = /^evt_[0-9A-Z]{26}$/;
const DURATION = /^(\d{1,6})(s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3600_000, d: 86400_000, w: 7 * 86400_000 };

function badQuery(field: string, message: string, text: string): HttpError {
  return new HttpError('VALIDATION_FAILED', text, { details: [{ field: `querystring.${field}`, message }] });
}

function encodeCursor(id: string): string {
  return Buffer.from(id, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!CURSOR_ID.test(id)) {
    throw badQuery(
      'cursor',
      'is not a cursor issued by this server',
      'Invalid cursor: pass the next_cursor of a previous page.',
    );
  }
  return id;
}

/** `since`: an RFC 3339 time, or a duration back from now (`90s`, `30m`, `24h`, `7d`, `2w`). */
export function parseSince(since: string, now: Date): string {
  const d = DURATION.exec(since);
  if (d) return new Date(now.getTime() - Number(d[1]) * (UNIT_MS[d[2] as string] ?? 0)).toISOString();
  const t = /^\d{4}-\d{2}-\d{2}T/.test(since) ? Date.parse(since) : Number.NaN;
  if (Number.isNaN(t)) {
    throw badQuery(
      'since',
      'must be an RFC 3339 time or a duration like 24h',
      'Invalid since: give an RFC 3339 time (2026-01-31T00:00:00Z) or a duration such as 30m, 24h or 7d.',
    );
  }
  return new Date(t).toISOString();
}

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
  const { audit, clock } = app.breeze;
  const orgs = new OrgService(app.breeze);

  app.get<{ Querystring: AuditQuery }>(
    '/v1/audit-events',
    {
      config: { auth: 'required' },
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
      const caller = requireAuth(request);
      const q = request.query;
      const since = q.since !== undefined ? parseSince(q.since, clock()) : undefined;
      const beforeId = q.cursor !== undefined ? decodeCursor(q.cursor) : undefined;
      const access = await orgs.defaultAccess(caller, q.org_id);
      // the whole organization for owners and admins; everyone else what they did or what is theirs
      const scope = auditScope(access);
      const limit = q.limit ?? 50;
      const rows = await audit.list({
        orgId: access.orgId,
        ...(q.action !== undefined ? { action: q.action } : {}),
        ...(q.key_id !== undefined ? { keyId: q.key_id } : {}),
        ...(q.actor_id !== undefined ? { actorId: q.actor_id } : {}),
        ...(since !== undefined ? { since } : {}),
        ...(beforeId !== undefined ? { beforeId } : {}),
        ...(scope === 'own' ? { visibleTo: caller.user.id } : {}),
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return { data: page, next_cursor: rows.length > limit && last ? encodeCursor(last.id) : null };
    },
  );
}
