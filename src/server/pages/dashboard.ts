import type { FastifyError, FastifyInstance } from 'fastify';
import { HttpError } from '../../core/errors.js';
import { registerAccountRoutes } from './account-routes.js';
import { DASHBOARD_JS, DASHBOARD_JS_ETAG } from './assets.js';
import { registerAuditRoutes } from './audit-routes.js';
import { DashboardKit, sendError } from './dashboard-kit.js';
import { HIDE, seeOther } from './http.js';
import { registerKeyRoutes } from './key-routes.js';
import { registerKeysRoutes } from './keys-routes.js';
import { SCRIPT_PATH } from './layout.js';
import { registerOrgPlatformRoutes } from './org-platform-routes.js';
import { registerOrgRoutes } from './org-routes.js';

/**
 * The signed-in dashboard (PLATFORM.md "Dashboard"): `/keys`, `/keys/new`, `/keys/:key_id`,
 * `/account`, `/orgs/:org_id`, `/audit`. Registered inside `pageRoutes`, so it shares their hooks
 * (no-store, frame denial, form bodies) and rate limits. Every action is a form POST with the
 * session's CSRF token, answered by a redirect and a flash (POST-redirect-GET), except the two that
 * show a plaintext key once (create, rotate): their POST renders it and nothing can render it again.
 * Every decision is the services' (ApiKeyOps, OrgService) and so authz.ts's: no second rule set.
 *
 * This builds the shared plumbing once (`DashboardKit`, dashboard-kit.ts) and registers each page's
 * routes (`*-routes.ts`, next to the page's view) in this same context, so they share the error
 * handler below.
 */
export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  const kit = new DashboardKit(app);

  // pages answer errors as pages: a refusal is a 4xx page, never the JSON error shape or a 5xx
  app.setErrorHandler((err: FastifyError | HttpError, request, reply) => {
    const status = err.statusCode ?? 500;
    if (err instanceof HttpError && err.headers) reply.headers(err.headers);
    if (status === 404) {
      return sendError(reply, 404, 'Not found', 'There is nothing here, or it is not yours to see.');
    }
    if (status === 429) return sendError(reply, 429, 'Too many requests', 'Wait a minute, then try again.');
    if (status >= 400 && status < 500) {
      // API messages of our own services only: they never carry a secret
      const message = err instanceof HttpError ? err.message : 'The request could not be understood.';
      return sendError(reply, status, 'That did not work', message);
    }
    request.log.error({ err }, 'dashboard error');
    return sendError(reply, 500, 'Something went wrong', 'Please try again in a moment.');
  });

  // ---- entry and assets ----------------------------------------------------------------------

  app.get('/', { schema: HIDE }, async (request, reply) => {
    // PLATFORM.md: `/` -> `/keys` signed in, else `/login` (whose sign-in then leads to /keys)
    return seeOther(reply, (await kit.sessions.current(request)) ? '/keys' : '/login');
  });

  app.get(SCRIPT_PATH, { schema: HIDE }, async (request, reply) => {
    reply.header('etag', DASHBOARD_JS_ETAG);
    if (request.headers['if-none-match'] === DASHBOARD_JS_ETAG) return reply.code(304).send();
    return reply.type('text/javascript; charset=utf-8').send(DASHBOARD_JS);
  });

  registerAuditRoutes(app, kit);
  registerKeysRoutes(app, kit);
  registerKeyRoutes(app, kit);
  registerAccountRoutes(app, kit);
  registerOrgRoutes(app, kit);
  registerOrgPlatformRoutes(app, kit);
}
