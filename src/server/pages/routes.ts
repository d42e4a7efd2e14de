import formbody from '@fastify/formbody';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../../core/errors.js';
import { normaliseScopes } from '../../core/types.js';
import { EmailCodes } from '../email-codes.js';
import { backgroundMailer } from '../mail/background.js';
import { CliLoginService, formatUserCode, normaliseUserCode } from '../routes/cli-logins.js';
import { requestMeta } from '../services/audit.js';
import { type BrowserSession, Sessions } from '../session.js';
import type { LoginRow } from '../store/logins.js';
import { normaliseEmail } from '../store/users.js';
import { isValidEmail } from '../validation.js';
import { dashboardRoutes } from './dashboard.js';
import { field } from './forms.js';
import { HIDE, rateLimit, seeOther } from './http.js';
import { displayIp, sameNetwork } from './ip.js';
import {
  authorizePage,
  codePage,
  emailPage,
  errorPage,
  html,
  pageCsp,
  resultPage,
  typeCodePage,
} from './views.js';

/** Per-email cap on mailed sign-in codes (a mailbox must not be flooded from this form). */
const CODES_PER_EMAIL = 10;
const CODES_PER_EMAIL_WINDOW_MS = 10 * 60_000;

/** Where to go after sign-in: a path on this site only (no `//host`, no scheme). */
export function safeNext(value: string | undefined): string {
  if (!value || value.length > 500 || !value.startsWith('/') || value.startsWith('//')) return '/device';
  // URL characters only: no backslash (some browsers read it as a slash), spaces or controls
  if (!/^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*$/.test(value)) return '/device';
  return value;
}

/**
 * The CSP source that lets the approve form's redirect reach the loopback listener. CSP host
 * sources cannot spell an IPv6 literal (Chromium ignores `http://[::1]:port`), so an `[::1]`
 * target needs the `http:` scheme source; `127.0.0.1` gets its exact origin.
 */
export function formTarget(redirectUri: string): string {
  const url = new URL(redirectUri);
  return url.hostname.startsWith('[') ? 'http:' : url.origin;
}

function sendPage(
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
 * The browser pages: `/login` (email -> mailed code -> session cookie), `/device` (type the code,
 * or, for a login with a loopback redirect, arrive with `?user_code=`; then Approve / Deny), `/logout`. HTML, no scripts, strict CSP,
 * not frameable, CSRF tokens on every POST, and no input ever yields a 5xx.
 */
export async function pageRoutes(app: FastifyInstance): Promise<void> {
  const ctx = app.breeze;
  const sessions = new Sessions(ctx);
  // mail in the background, as POST /auth/code does: known and unknown addresses then answer alike
  // and at the same speed, and a failing SMTP server cannot tell them apart with a 500
  const codes = new EmailCodes({ ...ctx, mailer: backgroundMailer(app, ctx.mailer) });
  const logins = new CliLoginService(ctx);
  // per mailbox, whatever the address: the same @fastify/rate-limit limiter POST /auth/code uses
  const perEmail = app.createRateLimit({
    max: CODES_PER_EMAIL,
    timeWindow: CODES_PER_EMAIL_WINDOW_MS,
    keyGenerator: (req: FastifyRequest) => `page-email:${normaliseEmail(field(req.body, 'email') ?? '')}`,
  });

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

  function expiredForm(reply: FastifyReply): FastifyReply {
    return sendPage(
      reply,
      403,
      errorPage(403, 'This form expired', 'Go back, reload the page and try again.'),
    );
  }

  /** A POST from a page of ours: same origin (as far as the browser tells) and a valid form token. */
  function preSessionFormOk(request: FastifyRequest): boolean {
    return sessions.isSameOrigin(request) && sessions.checkFormToken(request, field(request.body, 'csrf'));
  }

  function sessionFormOk(request: FastifyRequest, session: BrowserSession): boolean {
    return sessions.isSameOrigin(request) && sessions.checkCsrf(session, field(request.body, 'csrf'));
  }

  function signInFirst(reply: FastifyReply, next: string): FastifyReply {
    return seeOther(reply, `/login?next=${encodeURIComponent(safeNext(next))}`);
  }

  // ---- sign-in -----------------------------------------------------------------------------

  app.get('/login', { schema: HIDE }, async (request, reply) => {
    const next = safeNext(field(request.query, 'next'));
    if (await sessions.current(request)) return seeOther(reply, next);
    return sendPage(
      reply,
      200,
      emailPage({
        csrf: sessions.formToken(request, reply),
        next,
        context: next.startsWith('/device')
          ? 'Sign in to approve the login from your terminal. We will email you a one-time code.'
          : undefined,
      }),
    );
  });

  app.post('/login', { schema: HIDE, config: rateLimit(20) }, async (request, reply) => {
    const next = safeNext(field(request.body, 'next'));
    if (!preSessionFormOk(request)) return expiredForm(reply);
    const csrf = sessions.formToken(request, reply);
    // ASCII whitespace only, as a browser's email input strips it: a BOM or zero-width space is refused
    const raw = (field(request.body, 'email') ?? '').replace(/^[ \t\n\f\r]+|[ \t\n\f\r]+$/g, '');
    if (!isValidEmail(raw)) {
      return sendPage(
        reply,
        400,
        emailPage({ csrf, next, email: raw.slice(0, 254), error: 'Enter a valid email address.' }),
      );
    }
    const email = normaliseEmail(raw);
    const limit = await perEmail(request);
    if (!limit.isAllowed && limit.isExceeded) {
      reply.header('retry-after', String(Math.max(1, limit.ttlInSeconds)));
      return sendPage(
        reply,
        429,
        emailPage({ csrf, next, email, error: 'Too many codes were sent to this address. Try again later.' }),
      );
    }
    // unknown addresses get the same answer; with signup closed they just never receive a code
    const known = await ctx.store.users.findByEmail(email);
    const codeId = await codes.issue(email, 'browser', !!known || ctx.config.signup === 'open');
    return sendPage(reply, 200, codePage({ csrf, next, codeId, email, embedded: !!ctx.config.embedded }));
  });

  app.post('/login/code', { schema: HIDE, config: rateLimit(30) }, async (request, reply) => {
    const next = safeNext(field(request.body, 'next'));
    if (!preSessionFormOk(request)) return expiredForm(reply);
    const csrf = sessions.formToken(request, reply);
    const codeId = field(request.body, 'code_id') ?? '';
    const email = (field(request.body, 'email') ?? '').slice(0, 254);
    const code = (field(request.body, 'code') ?? '').slice(0, 64);
    const result = /^code_[A-Za-z0-9_-]{1,64}$/.test(codeId)
      ? await codes.verify(codeId, code, ['browser'])
      : ({ ok: false, reason: 'gone' } as const);
    if (result.ok && result.purpose === 'browser') {
      const user =
        (await ctx.store.users.findByEmail(result.email)) ??
        (ctx.config.signup === 'open' ? await ctx.store.users.ensure(result.email, ctx.clock()) : undefined);
      if (user) {
        await sessions.create(reply, user.id);
        return seeOther(reply, next);
      }
    }
    if (!result.ok && result.reason === 'wrong') {
      return sendPage(
        reply,
        401,
        codePage({
          csrf,
          next,
          codeId,
          email,
          embedded: !!ctx.config.embedded,
          error: 'That code is not right. Check the email and try again.',
        }),
      );
    }
    return sendPage(
      reply,
      400,
      emailPage({
        csrf,
        next,
        email,
        error: 'That code expired or was tried too many times. Request a new one.',
      }),
    );
  });

  app.post('/logout', { schema: HIDE }, async (request, reply) => {
    const session = await sessions.current(request);
    if (session && !sessionFormOk(request, session)) return expiredForm(reply);
    await sessions.destroy(request, reply);
    return seeOther(reply, '/login');
  });

  // ---- CLI login approval ------------------------------------------------------------------

  function decidedPage(reply: FastifyReply, login: LoginRow): FastifyReply {
    switch (login.status) {
      case 'approved':
      case 'exchanged':
        return sendPage(
          reply,
          409,
          resultPage('ok', 'Already approved', 'This login was approved already. Return to your terminal.'),
        );
      case 'denied':
        return sendPage(
          reply,
          409,
          resultPage(
            'bad',
            'Login denied',
            'This login was denied. Run "breeze login" again if that was a mistake.',
          ),
        );
      default:
        return expiredPage(reply);
    }
  }

  function expiredPage(reply: FastifyReply): FastifyReply {
    return sendPage(
      reply,
      410,
      resultPage(
        'warn',
        'This login expired',
        html`Codes are valid for 10 minutes. Run <kbd>breeze login</kbd> again to get a new one.`,
      ),
    );
  }

  function unknownCode(reply: FastifyReply, session: BrowserSession, value: string): FastifyReply {
    return sendPage(
      reply,
      404,
      typeCodePage({
        email: session.user.email,
        csrf: session.csrf,
        value: value.slice(0, 12),
        error: 'No login is waiting for that code. Check the code in your terminal.',
      }),
    );
  }

  /** The approver's projects, personal `default` first (the picker's preselection). */
  async function projectChoices(user: {
    id: string;
    email: string;
  }): Promise<{ id: string; label: string }[]> {
    const { project } = await ctx.store.orgs.ensurePersonal(user, ctx.clock());
    const all = await ctx.store.orgs.projectsOfUser(user.id);
    const label = (p: (typeof all)[number]) => `${p.org_name} / ${p.name}`;
    const personal = all.filter((p) => p.id === project.id);
    return [...personal, ...all.filter((p) => p.id !== project.id)].map((p) => ({
      id: p.id,
      label: label(p),
    }));
  }

  /** What proves that the user typed the code of `login` on our page (device mode only). */
  const typedPurpose = (login: LoginRow) => `device-typed:${login.id}`;

  /**
   * The Approve / Deny page of a live, pending login. Device mode (no loopback redirect) comes here
   * only from the typed-code form, and its Approve form carries the proof of that.
   */
  async function authorize(
    request: FastifyRequest,
    reply: FastifyReply,
    session: BrowserSession,
    login: LoginRow,
    userCode: string,
  ): Promise<FastifyReply> {
    const device = !login.redirect_uri;
    const targets = login.redirect_uri ? [formTarget(login.redirect_uri)] : [];
    return sendPage(
      reply,
      200,
      authorizePage({
        mode: device ? 'device' : 'loopback',
        // the lookup matched, so the code normalises to the canonical one
        userCode: formatUserCode(normaliseUserCode(userCode) ?? ''),
        clientName: login.client_name,
        hostname: login.hostname,
        keyName: login.key_name ?? `${login.hostname} (breeze login)`,
        ip: displayIp(login.requester_ip),
        approverIp: displayIp(request.ip),
        sameNetwork: sameNetwork(login.requester_ip, request.ip),
        createdAt: new Date(login.created_at),
        now: ctx.clock(),
        expiresAt: new Date(login.expires_at),
        scopes: normaliseScopes(login.scopes.split(' ')),
        email: session.user.email,
        csrf: session.csrf,
        typed: device ? sessions.proof(session, typedPurpose(login)) : undefined,
        projects: await projectChoices(session.user),
      }),
      targets,
    );
  }

  /**
   * `/device` and `verification_uri_complete` (`/device?user_code=...`). A login with a loopback
   * redirect gets its Approve page at once: the approval can only reach the CLI on the approver's
   * own computer. A login from another device never does: its link opens the code-entry page,
   * empty, and the Approve form appears only after the user typed the code there (POST /device).
   */
  app.get('/device', { schema: HIDE, config: rateLimit(60) }, async (request, reply) => {
    const session = await sessions.current(request);
    const userCode = field(request.query, 'user_code')?.trim();
    if (!session)
      return signInFirst(reply, userCode ? `/device?user_code=${encodeURIComponent(userCode)}` : '/device');
    if (!userCode)
      return sendPage(reply, 200, typeCodePage({ email: session.user.email, csrf: session.csrf }));
    const found = await logins.lookup(userCode);
    // never prefilled from a link, not even with a code that matches nothing
    if (found.kind === 'unknown') return unknownCode(reply, session, '');
    if (found.kind === 'expired') return expiredPage(reply);
    const login = found.login;
    if (login.status !== 'pending') return decidedPage(reply, login);
    if (!login.redirect_uri) {
      return sendPage(
        reply,
        200,
        typeCodePage({ email: session.user.email, csrf: session.csrf, fromLink: true }),
      );
    }
    return authorize(request, reply, session, login, userCode);
  });

  /** The typed code: a same-origin form post of a signed-in session. */
  app.post('/device', { schema: HIDE, config: rateLimit(60) }, async (request, reply) => {
    const session = await sessions.current(request);
    if (!session) return signInFirst(reply, '/device');
    if (!sessionFormOk(request, session)) return expiredForm(reply);
    const userCode = (field(request.body, 'user_code') ?? '').trim();
    const found = await logins.lookup(userCode);
    if (found.kind === 'unknown') return unknownCode(reply, session, userCode);
    if (found.kind === 'expired') return expiredPage(reply);
    if (found.login.status !== 'pending') return decidedPage(reply, found.login);
    return authorize(request, reply, session, found.login, userCode);
  });

  for (const action of ['approve', 'deny'] as const) {
    app.post(`/device/${action}`, { schema: HIDE, config: rateLimit(60) }, async (request, reply) => {
      const userCode = (field(request.body, 'user_code') ?? '').trim();
      const session = await sessions.current(request);
      if (!session) return signInFirst(reply, `/device?user_code=${encodeURIComponent(userCode)}`);
      if (!sessionFormOk(request, session)) return expiredForm(reply);
      const found = await logins.lookup(userCode);
      if (found.kind === 'unknown') return unknownCode(reply, session, userCode);
      if (found.kind === 'expired') return expiredPage(reply);
      // device mode: only a form reached by typing the code may approve (denying hands out nothing)
      if (
        action === 'approve' &&
        !found.login.redirect_uri &&
        !sessions.checkProof(session, typedPurpose(found.login), field(request.body, 'typed'))
      ) {
        return sendPage(
          reply,
          403,
          typeCodePage({
            email: session.user.email,
            csrf: session.csrf,
            error: 'To approve a login from another device, type the code that device shows.',
          }),
        );
      }
      // the project picker: only one of the approver's own projects (else the personal `default`)
      const picked = action === 'approve' ? field(request.body, 'project_id') : undefined;
      const projectId = picked
        ? (await projectChoices(session.user)).find((p) => p.id === picked)?.id
        : undefined;
      if (picked && !projectId) return unknownCode(reply, session, userCode);
      const decided =
        action === 'approve'
          ? await logins.approve(found.login, session.user.id, projectId, requestMeta(request))
          : await logins.deny(found.login, session.user.id, requestMeta(request));
      if (!decided) {
        const again = await logins.lookup(userCode);
        return again.kind === 'live' ? decidedPage(reply, again.login) : expiredPage(reply);
      }
      if (decided.redirect) return seeOther(reply, decided.redirect);
      return action === 'approve'
        ? sendPage(
            reply,
            200,
            resultPage(
              'ok',
              'Login approved',
              'Return to your terminal: breeze is finishing the login. You can close this tab.',
            ),
          )
        : sendPage(
            reply,
            200,
            resultPage('bad', 'Login denied', 'No key was created. You can close this tab.'),
          );
    });
  }

  // the signed-in dashboard: a child context, so it shares these hooks and the form parser
  await app.register(dashboardRoutes);
}
