import { HttpError } from '../../core/errors.js';
import { auditScope, type OrgAccess } from '../authz.js';
import type { AuthContext, ServerContext } from '../context.js';
import { isDateTime } from '../validation.js';
import type { AuditEvent } from './audit.js';
import type { OrgService } from './orgs.js';

export interface AuditLogQuery {
  org_id?: string;
  action?: string;
  key_id?: string;
  actor_id?: string;
  since?: string;
  limit: number;
  cursor?: string;
}

const CURSOR_ID = /^evt_[0-9A-Z]{26}$/;
const DURATION = /^(\d{1,6})(s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3600_000, d: 86400_000, w: 7 * 86400_000 };

function badQuery(field: string, message: string, text: string): HttpError {
  return new HttpError('VALIDATION_FAILED', text, { details: [{ field: `querystring.${field}`, message }] });
}

export function encodeAuditCursor(id: string): string {
  return Buffer.from(id, 'utf8').toString('base64url');
}

export function decodeAuditCursor(cursor: string): string {
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
  // a duration reaching back before 1970 means "everything": clamp (a Date that far back is invalid)
  if (d)
    return new Date(Math.max(0, now.getTime() - Number(d[1]) * (UNIT_MS[d[2] as string] ?? 0))).toISOString();
  // as the API's date-time format has it (no impossible day, no missing offset, no trailing bytes),
  // not as Date.parse alone would read it (as another day, in the server's zone, ignoring them)
  const t = isDateTime(since) ? Date.parse(since) : Number.NaN;
  if (Number.isNaN(t)) {
    throw badQuery(
      'since',
      'must be an RFC 3339 time or a duration like 24h',
      'Invalid since: give an RFC 3339 time (2026-01-31T00:00:00Z) or a duration such as 30m, 24h or 7d.',
    );
  }
  return new Date(t).toISOString();
}

/**
 * One page of an organization's audit log, newest first, as `GET /v1/audit-events` and the
 * dashboard's `/audit` and key pages read it: owners and admins see the whole organization, everyone
 * else what they did or what is theirs (authz.ts `auditScope`).
 */
export async function readAuditLog(
  ctx: ServerContext,
  orgs: OrgService,
  caller: AuthContext,
  q: AuditLogQuery,
): Promise<{ events: AuditEvent[]; nextCursor: string | null; access: OrgAccess }> {
  const since = q.since !== undefined ? parseSince(q.since, ctx.clock()) : undefined;
  const beforeId = q.cursor !== undefined ? decodeAuditCursor(q.cursor) : undefined;
  const access = await orgs.defaultAccess(caller, q.org_id);
  const scope = auditScope(access);
  const rows = await ctx.audit.list({
    orgId: access.orgId,
    ...(q.action !== undefined ? { action: q.action } : {}),
    ...(q.key_id !== undefined ? { keyId: q.key_id } : {}),
    ...(q.actor_id !== undefined ? { actorId: q.actor_id } : {}),
    ...(since !== undefined ? { since } : {}),
    ...(beforeId !== undefined ? { beforeId } : {}),
    ...(scope === 'own' ? { visibleTo: caller.user.id } : {}),
    limit: q.limit + 1,
  });
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1];
  return {
    events: page,
    nextCursor: rows.length > q.limit && last ? encodeAuditCursor(last.id) : null,
    access,
  };
}
