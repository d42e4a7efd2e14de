import type { FastifyInstance } from 'fastify';
import type { CliLoginRequest } from '../../core/types.js';
import { clientIp } from '../client-ip.js';
import { perIpKey } from '../plugins/rate-limit.js';
import { requestMeta } from '../services/audit.js';
import { CliLoginService } from '../services/cli-logins.js';
import { LoginNotices } from '../services/login-notice.js';
import {
  errorResponses,
  idSchema,
  keySchema,
  nullMeansAbsent,
  scopesSchema,
  textSchema,
  userSchema,
} from './schemas.js';

type CreateBody = CliLoginRequest;

interface ExchangeBody {
  code_verifier: string;
  code?: string;
}

/** Per-address limits: login starts, and exchanges (polls plus any guessing of login ids). */
export const LOGIN_STARTS_PER_IP = { max: 120, timeWindow: 60_000 } as const;
export const EXCHANGES_PER_IP = { max: 600, timeWindow: 60_000 } as const;

/** `POST /v1/cli/logins` and its exchange. */
export async function cliLoginRoutes(app: FastifyInstance): Promise<void> {
  const logins = new CliLoginService(app.breeze);
  const notices = new LoginNotices(app, app.breeze);

  app.post<{ Body: CreateBody }>(
    '/v1/cli/logins',
    {
      // each start is a row and takes a user code: bounded per client address
      config: { rateLimit: { ...LOGIN_STARTS_PER_IP, keyGenerator: perIpKey('cli-login-ip') } },
      preValidation: nullMeansAbsent('key_name', 'scopes', 'redirect_uri', 'state'),
      schema: {
        summary: 'Start a CLI login (PKCE S256); the user approves it in a browser',
        tags: ['cli-login'],
        security: [],
        body: {
          type: 'object',
          required: ['code_challenge', 'code_challenge_method', 'client_name', 'hostname'],
          properties: {
            code_challenge: { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' },
            code_challenge_method: { type: 'string', enum: ['S256'] },
            client_name: textSchema(100),
            hostname: textSchema(100),
            key_name: textSchema(200),
            scopes: scopesSchema,
            redirect_uri: textSchema(2000, { allowBlank: true }),
            state: textSchema(500, { allowBlank: true }),
          },
        },
        response: {
          201: {
            type: 'object',
            required: [
              'login_id',
              'user_code',
              'verification_uri',
              'verification_uri_complete',
              'expires_in',
              'interval',
            ],
            properties: {
              login_id: { type: 'string' },
              user_code: { type: 'string' },
              verification_uri: { type: 'string' },
              verification_uri_complete: { type: 'string' },
              expires_in: { type: 'integer' },
              interval: { type: 'integer' },
            },
          },
          ...errorResponses(400, 413, 429),
        },
      },
    },
    async (request, reply) => {
      const started = await logins.create(request.body, clientIp(request));
      return reply.code(201).header('cache-control', 'no-store').send(started);
    },
  );

  app.post<{ Params: { login_id: string }; Body: ExchangeBody }>(
    '/v1/cli/logins/:login_id/exchange',
    {
      config: {
        // guessing login ids is bounded per address; a CLI polls once per `interval` (>= 1 s)
        rateLimit: { ...EXCHANGES_PER_IP, keyGenerator: perIpKey('cli-exchange-ip') },
        // API.md lists only 400s here: an id that cannot exist is a login that is not known
        impossibleId: { code: 'INVALID_GRANT', message: 'Unknown login.' },
      },
      preValidation: nullMeansAbsent('code'),
      schema: {
        summary: 'Exchange an approved login for a new API key (once)',
        tags: ['cli-login'],
        security: [],
        params: {
          type: 'object',
          required: ['login_id'],
          properties: { login_id: idSchema },
        },
        body: {
          type: 'object',
          required: ['code_verifier'],
          properties: {
            code_verifier: { type: 'string', maxLength: 1000 },
            code: { type: 'string', maxLength: 1000 },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['api_key', 'key', 'user'],
            properties: { api_key: { type: 'string' }, key: keySchema, user: userSchema },
          },
          ...errorResponses(400, 413, 429),
        },
      },
    },
    async (request, reply) => {
      const { code_verifier, code } = request.body;
      const meta = requestMeta(request);
      const { login, ...result } = await logins.exchange(request.params.login_id, code_verifier, code, meta);
      notices.send({
        user: result.user,
        key: { id: result.key.key_id, name: result.key.name, prefix: result.key.prefix },
        hostname: login.hostname,
        ip: meta.ip,
        userAgent: meta.userAgent,
        at: app.breeze.clock(),
        method: login.redirect_uri ? 'browser' : 'device',
      });
      return reply.header('cache-control', 'no-store').send(result);
    },
  );
}
