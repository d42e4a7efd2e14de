import type { FastifyInstance, FastifyRequest } from 'fastify';
import { EmailCodes } from '../email-codes.js';
import { backgroundMailer } from '../mail/background.js';
import { normaliseEmail } from '../store/users.js';
import { isValidEmail } from '../validation.js';
import { field } from './forms.js';
import { HIDE, rateLimit, seeOther } from './http.js';
import { type PageKit, safeNext, sendPage } from './page-kit.js';
import { codePage, emailPage } from './views.js';

/** Per-email cap on mailed sign-in codes (a mailbox must not be flooded from this form). */
const CODES_PER_EMAIL = 10;
const CODES_PER_EMAIL_WINDOW_MS = 10 * 60_000;

/** `/login` (email -> mailed code -> session cookie) and `/logout`. */
export function registerSignInRoutes(app: FastifyInstance, kit: PageKit): void {
  const { ctx, sessions } = kit;
  // mail in the background, as POST /auth/code does: known and unknown addresses then answer alike
  // and at the same speed, and a failing SMTP server cannot tell them apart with a 500
  const codes = new EmailCodes({ ...ctx, mailer: backgroundMailer(app, ctx.mailer) });
  // per mailbox, whatever the address: the same @fastify/rate-limit limiter POST /auth/code uses
  const perEmail = app.createRateLimit({
    max: CODES_PER_EMAIL,
    timeWindow: CODES_PER_EMAIL_WINDOW_MS,
    keyGenerator: (req: FastifyRequest) => `page-email:${normaliseEmail(field(req.body, 'email') ?? '')}`,
  });

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
    if (!kit.preSessionFormOk(request)) return kit.expiredForm(reply);
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
    if (!kit.preSessionFormOk(request)) return kit.expiredForm(reply);
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
    if (session && !kit.sessionFormOk(request, session)) return kit.expiredForm(reply);
    await sessions.destroy(request, reply);
    return seeOther(reply, '/login');
  });
}
