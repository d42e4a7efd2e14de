import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.js';
import { type BrowserSession, Sessions } from '../session.js';
import { field } from './forms.js';
import { seeOther } from './http.js';
import { errorPage, pageCsp } from './views.js';

/**
 * Where to go after sign-in: a path on this site only (no `//host`, no scheme); the dashboard when
 * none is given (a device approval always names `/device`).
 */
export function safeNext(value: string | undefined): string {
  if (!value || value.length > 500 || !value.startsWith('/') || value.startsWith('//')) return '/keys';
  // URL characters only: no backslash (some browsers read it as a slash), spaces or controls
  if (!/^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*$/.test(value)) return '/keys';
  return value;
}

/** An HTML page, with its Content-Security-Policy (`formTargets`: where its forms may post). */
export function sendPage(
  reply: FastifyReply,
  status: number,
  page: string,
  formTargets: string[] = [],
): FastifyReply {
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('content-security-policy', pageCsp(formTargets))
    .send(page);
}

/**
 * A POST of a signed-in page of ours (sign-out, device approval, the dashboard's forms): same origin,
 * as far as the browser tells, and the session's own CSRF token in the form.
 */
export function isSessionForm(sessions: Sessions, request: FastifyRequest, session: BrowserSession): boolean {
  return sessions.isSameOrigin(request) && sessions.checkCsrf(session, field(request.body, 'csrf'));
}

/** What the sign-in and device pages share: the browser sessions and the form checks. */
export class PageKit {
  readonly sessions: Sessions;

  constructor(readonly ctx: ServerContext) {
    this.sessions = new Sessions(ctx);
  }

  expiredForm(reply: FastifyReply): FastifyReply {
    return sendPage(
      reply,
      403,
      errorPage(403, 'This form expired', 'Go back, reload the page and try again.'),
    );
  }

  /** A POST from a page of ours: same origin (as far as the browser tells) and a valid form token. */
  preSessionFormOk(request: FastifyRequest): boolean {
    return (
      this.sessions.isSameOrigin(request) &&
      this.sessions.checkFormToken(request, field(request.body, 'csrf'))
    );
  }

  /** A POST of a signed-in page of ours: see isSessionForm. */
  sessionFormOk(request: FastifyRequest, session: BrowserSession): boolean {
    return isSessionForm(this.sessions, request, session);
  }

  signInFirst(reply: FastifyReply, next: string): FastifyReply {
    return seeOther(reply, `/login?next=${encodeURIComponent(safeNext(next))}`);
  }
}
