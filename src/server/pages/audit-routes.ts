import type { FastifyInstance } from 'fastify';
import { HttpError } from '../../core/errors.js';
import { auditScope } from '../authz.js';
import { AUDIT_ACTIONS } from '../services/audit.js';
import { readAuditLog } from '../services/audit-log.js';
import { isPossibleId } from '../validation.js';
import { type AuditFilters, auditPage, SINCE_CHOICES } from './audit-page.js';
import { type DashboardKit, PAGE_SIZE, send } from './dashboard-kit.js';
import { field } from './forms.js';
import { HIDE } from './http.js';

/** `/audit`: the organization's audit log, read through the same service and rule as the API's. */
export function registerAuditRoutes(app: FastifyInstance, kit: DashboardKit): void {
  const { ctx, orgs } = kit;

  app.get('/audit', { schema: HIDE }, async (request, reply) => {
    const seen = await kit.orgPage(request, reply);
    if (!seen) return reply;
    const { session, auth, access } = seen;
    const q = request.query;
    // only values the page offers (or a well-formed id) reach the service; others are said plainly
    const problems: string[] = [];
    const filters: AuditFilters = {};
    const action = field(q, 'action') || undefined;
    if (action) {
      if ((AUDIT_ACTIONS as readonly string[]).includes(action)) filters.action = action;
      else problems.push('That action is not one the log records; showing every action.');
    }
    const keyId = (field(q, 'key_id') ?? '').trim() || undefined;
    if (keyId) {
      if (/^key_[0-9A-Z]{26}$/.test(keyId)) filters.keyId = keyId;
      else
        problems.push('A key id looks like key_ followed by 26 letters and digits; the key filter is off.');
    }
    const actorId = field(q, 'actor_id') || undefined;
    if (actorId) {
      if (isPossibleId(actorId)) filters.actorId = actorId;
      else problems.push('Unknown actor; showing everyone.');
    }
    const since = field(q, 'since') || undefined;
    if (since) {
      if (SINCE_CHOICES.some((c) => c.value === since)) filters.since = since;
      else problems.push('Pick a time range from the list; showing any time.');
    }
    const cursor = field(q, 'cursor') || undefined;
    const read = (c?: string) =>
      readAuditLog(ctx, orgs, auth, {
        org_id: access.orgId,
        ...(filters.action ? { action: filters.action } : {}),
        ...(filters.keyId ? { key_id: filters.keyId } : {}),
        ...(filters.actorId ? { actor_id: filters.actorId } : {}),
        ...(filters.since ? { since: filters.since } : {}),
        limit: PAGE_SIZE,
        ...(c ? { cursor: c } : {}),
      });
    const log = await read(cursor).catch((err: unknown) => {
      // a cursor not of ours: the newest page
      if (err instanceof HttpError && err.code === 'VALIDATION_FAILED') return null;
      throw err;
    });
    const page = log ?? (await read());
    const [org, members] = await Promise.all([orgs.get(access.orgId), orgs.members(access)]);
    const whole = auditScope(access) === 'all';
    return send(
      reply,
      problems.length > 0 ? 400 : 200,
      auditPage({
        viewer: await kit.viewer(request, reply, session, access.orgId),
        orgName: org.name,
        whole,
        actions: AUDIT_ACTIONS,
        members: whole ? members : members.filter((m) => m.user_id === auth.user.id),
        filters,
        events: page.events,
        nextCursor: page.nextCursor,
        paged: log !== null && cursor !== undefined,
        ...(problems.length > 0 ? { problem: problems.join(' ') } : {}),
        now: ctx.clock(),
      }),
    );
  });
}
