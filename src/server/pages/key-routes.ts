import type { FastifyInstance, FastifyReply } from 'fastify';
import { HttpError } from '../../core/errors.js';
import { keyActionRefusal } from '../authz.js';
import { readAuditLog } from '../services/audit-log.js';
import type { BrowserSession } from '../session.js';
import { scopesOf } from '../store/keys.js';
import { keyEventsSection } from './audit-page.js';
import {
  type ActionResult,
  authOf,
  type DashboardKit,
  PageError,
  pageBy,
  refusal,
  scopeChoices,
  scopesFrom,
  send,
} from './dashboard-kit.js';
import { field, textInput } from './forms.js';
import { HIDE, rateLimit, seeOther } from './http.js';
import { deleteConfirmPage, GRACE_CHOICES, keyPage, rotatedKeyPage } from './key-page.js';
import { type UsageRange, usageSection, usageSeries } from './usage-chart.js';

/**
 * `/keys/:key_id`: one key (its usage and audit events) and its actions: rename, scopes, rotate
 * (the new plaintext shown once), disable / enable, delete behind a confirmation page.
 */
export function registerKeyRoutes(app: FastifyInstance, kit: DashboardKit): void {
  const { ctx, ops, orgs } = kit;
  /** A form action on the key in the URL: a key that is not the caller's is the page's 404. */
  const actOnKey = (
    reply: FastifyReply,
    session: BrowserSession,
    id: string,
    fn: () => Promise<ActionResult>,
  ) => kit.act(reply, session, `/keys/${id}`, fn, { notFoundIsPage: true });

  app.get<{ Params: { key_id: string } }>('/keys/:key_id', { schema: HIDE }, async (request, reply) => {
    const session = await kit.signedIn(request, reply);
    if (!session) return reply;
    const auth = authOf(session);
    const { row, auth: inOrg, access } = await ops.load(auth, request.params.key_id);
    const range: UsageRange = field(request.query, 'usage') === '30d' ? '30d' : '7d';
    const eventsCursor = field(request.query, 'events_cursor') || undefined;
    const [org, project, creator, points, log] = await Promise.all([
      orgs.get(access.orgId),
      row.project_id ? ctx.store.orgs.project(row.project_id) : undefined,
      ctx.store.users.get(row.user_id),
      usageSeries(ctx, row.id, range),
      readAuditLog(ctx, orgs, auth, {
        org_id: access.orgId,
        key_id: row.id,
        // nothing happens to a key before it exists: bounds the scan of the log
        since: row.created_at,
        limit: 20,
        cursor: eventsCursor,
      }).catch((err: unknown) => {
        // a cursor not of ours: the newest events
        if (err instanceof HttpError && err.code === 'VALIDATION_FAILED') {
          return readAuditLog(ctx, orgs, auth, {
            org_id: access.orgId,
            key_id: row.id,
            since: row.created_at,
            limit: 20,
          });
        }
        throw err;
      }),
    ]);
    return send(
      reply,
      200,
      keyPage({
        viewer: await kit.viewer(request, reply, session, access.orgId),
        key: ops.info(row),
        orgName: org.name,
        projectName: project?.name ?? '—',
        creatorEmail: creator?.email ?? 'a former member',
        role: access.role,
        scopes: scopeChoices(access.role, scopesOf(row)),
        rotated: row.rotated_at !== null,
        rotateRefusal: keyActionRefusal(inOrg, row, 'rotate'),
        now: ctx.clock(),
        extraSections: [
          usageSection({ keyId: row.id, range, points }),
          keyEventsSection({
            keyId: row.id,
            orgId: access.orgId,
            events: log.events,
            nextCursor: log.nextCursor,
            paged: eventsCursor !== undefined,
            usage: range,
            now: ctx.clock(),
          }),
        ],
      }),
    );
  });

  app.get<{ Params: { key_id: string } }>(
    '/keys/:key_id/delete',
    { schema: HIDE },
    async (request, reply) => {
      const session = await kit.signedIn(request, reply);
      if (!session) return reply;
      const { row, access } = await ops.load(authOf(session), request.params.key_id);
      return send(
        reply,
        200,
        deleteConfirmPage({
          viewer: await kit.viewer(request, reply, session, access.orgId),
          key: ops.info(row),
          now: ctx.clock(),
        }),
      );
    },
  );

  type KeyPost = { Params: { key_id: string } };
  const keyPost = { schema: HIDE, config: rateLimit(60) };

  app.post<KeyPost>('/keys/:key_id/rename', keyPost, async (request, reply) => {
    const session = await kit.formSession(request, reply);
    if (!session) return reply;
    const id = request.params.key_id;
    return actOnKey(reply, session, id, async () => {
      const name = textInput(field(request.body, 'name'), 200);
      if (!name) throw new PageError('Give the key a name (up to 200 characters, no control characters).');
      const row = await ops.update(authOf(session), id, { name }, pageBy(request, session));
      return { flash: { kind: 'ok', text: `Renamed to “${row.name}”.` } };
    });
  });

  app.post<KeyPost>('/keys/:key_id/scopes', keyPost, async (request, reply) => {
    const session = await kit.formSession(request, reply);
    if (!session) return reply;
    const id = request.params.key_id;
    return actOnKey(reply, session, id, async () => {
      const row = await ops.update(
        authOf(session),
        id,
        { scopes: scopesFrom(request.body) },
        pageBy(request, session),
      );
      return { flash: { kind: 'ok', text: `Scopes of “${row.name}”: ${scopesOf(row).join(', ')}.` } };
    });
  });

  app.post<KeyPost>('/keys/:key_id/rotate', keyPost, async (request, reply) => {
    const session = await kit.formSession(request, reply);
    if (!session) return reply;
    const id = request.params.key_id;
    const grace = GRACE_CHOICES.find((g) => String(g.value) === field(request.body, 'grace_period_s'));
    if (!grace) {
      kit.flash.set(reply, session, { kind: 'error', text: 'Pick how long the old key keeps working.' });
      return seeOther(reply, `/keys/${id}`);
    }
    let rotated: Awaited<ReturnType<typeof ops.rotate>>;
    try {
      rotated = await ops.rotate(authOf(session), id, grace.value, pageBy(request, session));
    } catch (err) {
      if (err instanceof HttpError && err.code === 'NOT_FOUND') throw err;
      const message = refusal(err);
      if (message === null) throw err;
      // a resubmitted rotation lands here (409: already rotated): no plaintext again
      kit.flash.set(reply, session, { kind: 'error', text: message });
      return seeOther(reply, `/keys/${id}`);
    }
    const orgId = rotated.row.org_id ?? '';
    return send(
      reply,
      201,
      rotatedKeyPage({
        viewer: await kit.viewer(request, reply, session, orgId),
        key: ops.info(rotated.row),
        previous: ops.info(rotated.previous),
        apiKey: rotated.apiKey,
        now: ctx.clock(),
      }),
    );
  });

  for (const action of ['disable', 'enable'] as const) {
    app.post<KeyPost>(`/keys/:key_id/${action}`, keyPost, async (request, reply) => {
      const session = await kit.formSession(request, reply);
      if (!session) return reply;
      const id = request.params.key_id;
      return actOnKey(reply, session, id, async () => {
        const row = await ops.setEnabled(authOf(session), id, action, pageBy(request, session));
        return {
          flash: {
            kind: 'ok',
            text:
              action === 'disable'
                ? `“${row.name}” is disabled: requests with it fail until you enable it.`
                : `“${row.name}” is enabled again.`,
          },
        };
      });
    });
  }

  app.post<KeyPost>('/keys/:key_id/delete', keyPost, async (request, reply) => {
    const session = await kit.formSession(request, reply);
    if (!session) return reply;
    const id = request.params.key_id;
    return actOnKey(reply, session, id, async () => {
      const row = await ops.delete(authOf(session), id, pageBy(request, session));
      return {
        to: `/keys?org_id=${row.org_id ?? ''}`,
        flash: { kind: 'ok', text: `Deleted “${row.name}” (${row.prefix}…).` },
      };
    });
  });
}
