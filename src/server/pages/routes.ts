import formbody from '@fastify/formbody';
import type { FastifyError, FastifyInstance } from 'fastify';
import { HttpError } from '../../core/errors.js';
import { dashboardRoutes } from './dashboard.js';
import { registerDeviceRoutes } from './device-routes.js';
import { PageKit, sendPage } from './page-kit.js';
import { registerSignInRoutes } from './sign-in-routes.js';
import { errorPage, pageCsp } from './views.js';

/**
 * The browser pages: sign-in (`/login`, `/logout`: sign-in-routes.ts), the approval of CLI logins
 * (`/device`: device-routes.ts) and the dashboard (dashboard.ts). HTML, no scripts, strict CSP, not
 * frameable, CSRF tokens on every POST, and no input ever yields a 5xx: the headers and the error
 * pages of all three are set here.
 */
export async function pageRoutes(app: FastifyInstance): Promise<void> {
  const kit = new PageKit(app.breeze);

  // form posts are for these pages only; the JSON API keeps accepting JSON alone
  await app.register(formbody, { bodyLimit: 16 * 1024 });

  app.addHook('onSend', async (_request, reply, payload) => {
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', pageCsp());
    reply.header('x-frame-options', 'DENY');
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'same-origin');
    reply.header('cache-control', 'no-store');
    return payload;
  });

  app.setErrorHandler((err: FastifyError | HttpError, request, reply) => {
    const status = err.statusCode ?? 500;
    if (err instanceof HttpError && err.headers) reply.headers(err.headers);
    if (status === 429) {
      return sendPage(reply, 429, errorPage(429, 'Too many attempts', 'Wait a minute, then try again.'));
    }
    if (status >= 400 && status < 500) {
      return sendPage(
        reply,
        status,
        errorPage(status, 'That did not work', 'The request could not be understood. Go back and try again.'),
      );
    }
    request.log.error({ err }, 'page error');
    return sendPage(reply, 500, errorPage(500, 'Something went wrong', 'Please try again in a moment.'));
  });

  registerSignInRoutes(app, kit);
  registerDeviceRoutes(app, kit);

  // the signed-in dashboard: a child context, so it shares these hooks and the form parser
  await app.register(dashboardRoutes);
}
