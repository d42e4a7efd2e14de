import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from '../../core/errors.js';
import { EmailCodes } from '../email-codes.js';
import type { JwtService } from '../jwt.js';
import { backgroundMailer } from '../mail/background.js';
import { perIpKey, rateLimitedError } from '../plugins/rate-limit.js';
import { requestMeta, userActor } from '../services/audit.js';
import { LoginNotices } from '../services/login-notice.js';
import type { StoreTx } from '../store/index.js';
import { normaliseEmail } from '../store/users.js';
import { emailSchema, errorResponses, idSchema, nullMeansAbsent, textSchema } from './schemas.js';

export interface AuthCodeRoutesOptions {
  jwt: JwtService;
}

/**
 * Limits of API.md "Email-code flow". They count requests that passed validation (the limiter runs
 * as a preHandler): a malformed body gets its 400 and neither mails a code nor tests one, so it does
 * not use up the address's budget for real ones.
 */
export const CODE_REQUESTS_PER_IP = { max: 10, timeWindow: 60_000, hook: 'preHandler' } as const;
export const CODE_REQUESTS_PER_EMAIL = { max: 5, timeWindow: 10 * 60_000 } as const;
export const VERIFICATIONS_PER_IP = { max: 30, timeWindow: 60_000, hook: 'preHandler' } as const;

interface CodeBody {
  email: string;
  type: 'api_key' | 'jwt';
}
interface VerifyBody {
  code: string;
  /** the CLI's hostname, named in the new-login notice */
  hostname?: string;
}
interface VerifyParams {
  id: string;
}

const noStore = { 'cache-control': 'no-store' };

/** `POST /auth/code` and `POST /auth/code/:id/verifications`: email codes traded for a key or a JWT. */
export async function authCodeRoutes(app: FastifyInstance, opts: AuthCodeRoutesOptions): Promise<void> {
  const ctx = app.breeze;
  // The embedded server (one local user, dev outbox) sends in line: the CLI then shows the mail's
  // subject before it prompts for the code, not in the middle of the prompt.
  const codes = new EmailCodes({
    ...ctx,
    mailer: ctx.config.embedded ? ctx.mailer : backgroundMailer(app, ctx.mailer),
  });

  const notices = new LoginNotices(app, ctx);

  // A second limiter on the same route: createRateLimit does not share the per-request "already
  // limited" flag that @fastify/rate-limit's route limiters use, so both limits apply.
  const perEmail = app.createRateLimit({
    ...CODE_REQUESTS_PER_EMAIL,
    keyGenerator: (req: FastifyRequest) => `auth-code-email:${normaliseEmail((req.body as CodeBody).email)}`,
  });
  async function limitPerEmail(request: FastifyRequest): Promise<void> {
    const r = await perEmail(request);
    if (r.isAllowed || !r.isExceeded) return;
    throw rateLimitedError(request, { after: `${r.ttlInSeconds}s`, ttl: r.ttl });
  }

  app.post<{ Body: CodeBody }>(
    '/auth/code',
    {
      config: { rateLimit: { ...CODE_REQUESTS_PER_IP, keyGenerator: perIpKey('auth-code-ip') } },
      schema: {
        summary: 'Mail a one-time code to an address (same answer whether or not it has an account)',
        tags: ['auth'],
        body: {
          type: 'object',
          required: ['email', 'type'],
          properties: {
            email: emailSchema,
            type: { type: 'string', enum: ['api_key', 'jwt'] },
          },
        },
        response: {
          201: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
          ...errorResponses(400, 413, 429),
        },
      },
    },
    async (request, reply) => {
      // after the per-IP limiter (the last preHandler): a request it refused counts for no email
      await limitPerEmail(request);
      if (request.body.type === 'jwt' && !opts.jwt.enabled) {
        throw new HttpError(
          'VALIDATION_FAILED',
          'This server issues no JWTs: its operator must set BREEZE_PEPPER (shared database). Use type "api_key".',
          { details: [{ field: 'body.type', message: 'jwt is disabled on this server' }] },
        );
      }
      const email = normaliseEmail(request.body.email);
      // Known and unknown emails cost the same: one lookup and one insert. With `signup: closed`
      // an unknown email gets a code row nobody can learn (no mail): same answer, no account.
      const user = await ctx.store.users.findByEmail(email);
      const send = user !== undefined || ctx.config.signup === 'open';
      const id = await codes.issue(email, request.body.type, send);
      return reply.code(201).headers(noStore).send({ id });
    },
  );

  app.post<{ Params: VerifyParams; Body: VerifyBody }>(
    '/auth/code/:id/verifications',
    {
      config: { rateLimit: { ...VERIFICATIONS_PER_IP, keyGenerator: perIpKey('auth-verify-ip') } },
      preValidation: nullMeansAbsent('hostname'),
      schema: {
        summary: 'Trade a mailed code for an API key or a JWT (once)',
        tags: ['auth'],
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: idSchema },
        },
        body: {
          type: 'object',
          required: ['code'],
          properties: { code: { type: 'string', minLength: 1, maxLength: 64 }, hostname: textSchema(100) },
        },
        response: {
          200: {
            type: 'object',
            description: '`secret` and `key_id` for type api_key; `token` and `expires_at` for type jwt',
            properties: {
              secret: { type: 'string' },
              key_id: { type: 'string' },
              token: { type: 'string' },
              expires_at: { type: 'string', format: 'date-time' },
            },
          },
          ...errorResponses(400, 401, 404, 413, 429),
        },
      },
    },
    async (request, reply) => {
      const result = await codes.verify(request.params.id, request.body.code, ['api_key', 'jwt']);
      if (!result.ok) {
        if (result.reason === 'wrong') throw new HttpError('AUTH_REQUIRED', 'Wrong code.');
        throw codeGone();
      }
      const now = ctx.clock();
      let user = await ctx.store.users.findByEmail(result.email);
      if (!user) {
        // only reachable when signup was closed after the code was issued: no mail went out for it
        if (ctx.config.signup === 'closed') throw codeGone();
        user = await ctx.store.users.ensure(result.email, now);
      }
      reply.headers(noStore);
      const signedIn = user;
      const meta = requestMeta(request);
      const by = { meta, actor: userActor(signedIn) };
      const purpose = result.purpose;
      const recordSignIn = (tx: StoreTx) =>
        ctx.audit.recordForUser(tx, meta, signedIn, {
          action: 'user.signed_in',
          actor: by.actor,
          target: { type: 'user', id: signedIn.id, ownerId: signedIn.id },
          details: { method: 'email_code', credential: purpose },
        });
      if (purpose === 'jwt') {
        const jwt = await opts.jwt.issue(signedIn.id);
        await ctx.store.transaction(recordSignIn);
        return { token: jwt.token, expires_at: jwt.expiresAt };
      }
      const { row, apiKey } = await ctx.store.transaction(async (tx) => {
        const minted = await ctx.keys.mint(
          {
            userId: signedIn.id,
            name: `email code (${now.toISOString().slice(0, 10)})`,
            scopes: ['read', 'write', 'admin'],
            expiresAt: null,
            createdVia: 'email_code',
            by,
          },
          tx,
        );
        await recordSignIn(tx);
        return minted;
      });
      notices.send({
        user: signedIn,
        key: row,
        hostname: request.body.hostname ?? null,
        ip: meta.ip,
        userAgent: meta.userAgent,
        at: now,
        method: 'email_code',
      });
      return { secret: apiKey, key_id: row.id };
    },
  );
}

function codeGone(): HttpError {
  return new HttpError(
    'NOT_FOUND',
    'No such code: it is unknown, used, expired or had too many wrong tries. Ask for a new one.',
  );
}
