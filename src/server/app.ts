import { isUtf8 } from 'node:buffer';
import { Ajv } from 'ajv';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { HttpError } from '../core/errors.js';
import { createSecretHasher } from '../core/hash.js';
import { newRequestId } from '../core/ids.js';
import { defaultConfig, type ServerConfig } from './config.js';
import type { ServerContext } from './context.js';
import { JwtService } from './jwt.js';
import { KeyService } from './key-service.js';
import { OneLineRequestLog } from './logging.js';
import type { Mailer } from './mail/mailer.js';
import { registerOpenApi } from './openapi.js';
import { pageRoutes } from './pages/routes.js';
import { type Authenticators, registerAuth } from './plugins/auth.js';
import { answerClientError, handleError, registerErrorHandling, UNSUPPORTED_TYPE } from './plugins/errors.js';
import { registerIdCheck } from './plugins/input.js';
import { registerPerKeyLimit } from './plugins/key-rate-limit.js';
import { registerIpRateLimit } from './plugins/rate-limit.js';
import { apiKeyRoutes } from './routes/api-keys.js';
import { auditRoutes } from './routes/audit-events.js';
import { authCodeRoutes } from './routes/auth-code.js';
import { cliLoginRoutes } from './routes/cli-logins.js';
import { healthRoutes } from './routes/health.js';
import { invitationLimit, invitationRoutes } from './routes/invitations.js';
import { jwksRoutes } from './routes/jwks.js';
import { keyUsageRoutes } from './routes/key-usage.js';
import { leakRoutes } from './routes/leaks.js';
import { meRoutes } from './routes/me.js';
import { memberRoutes } from './routes/members.js';
import { oidcRoutes } from './routes/oidc.js';
import { orgSettingsRoutes } from './routes/org-settings.js';
import { orgRoutes } from './routes/orgs.js';
import { projectRoutes } from './routes/projects.js';
import { verifyRoutes } from './routes/verify.js';
import { webhookRoutes } from './routes/webhooks.js';
import { AuditService } from './services/audit.js';
import { startAuditPruner } from './services/audit-pruner.js';
import { registerUsage, UsageTracker } from './services/usage.js';
import { setupWebhooks } from './services/webhooks.js';
import { Sessions } from './session.js';
import type { Store } from './store/index.js';
import { addFormats } from './validation.js';
import { VerificationCache } from './verification-cache.js';

export const BODY_LIMIT = 64 * 1024;

export interface BuildAppOptions {
  store: Store;
  mailer: Mailer;
  config?: Partial<ServerConfig>;
  clock?: () => Date;
  logger?: FastifyServerOptions['logger'];
  authenticators?: Authenticators;
  /** test and bench only: record no audit events (see AuditService) */
  auditDisabled?: boolean;
  /** tests only: when the retention pruner runs (default: 2 s after start, then hourly) */
  auditPruner?: { firstMs?: number; everyMs?: number };
}

function makeAjv(coerce: boolean) {
  // Bodies are strict (a number is not a name); query strings and params are text and get coerced.
  const ajv = new Ajv({
    coerceTypes: coerce ? 'array' : false,
    useDefaults: true,
    removeAdditional: false,
    allErrors: false,
    strict: false,
  });
  addFormats(ajv);
  return ajv;
}

/** Builds the Breeze server (no listen): plugins first, then routes. */
export async function buildApp(opts: BuildAppOptions): Promise<FastifyInstance> {
  const config = defaultConfig(opts.config);
  const clock = opts.clock ?? (() => new Date());
  const app = Fastify({
    logger: opts.logger ?? false,
    // one line per request, written when it is answered, instead of Fastify's two
    logController: new OneLineRequestLog(),
    bodyLimit: BODY_LIMIT,
    genReqId: () => newRequestId(),
    requestIdHeader: false,
    // request.ip, which every per-IP limit, audit event and device page reads: the connecting
    // address, or behind trusted proxies (--trust-proxy) the client their X-Forwarded-For names
    trustProxy: config.trustProxy?.length ? config.trustProxy : false,
    return503OnClosing: false,
    // API.md: unknown JSON fields are ignored. `__proto__` and `constructor.prototype` are unknown
    // fields too: dropped while parsing (no prototype is ever polluted), not refused as malformed.
    onProtoPoisoning: 'remove',
    onConstructorPoisoning: 'remove',
    // An id longer than the router's default 100 characters would be refused before routing, as a
    // 400 naming the whole path and before authentication. Let it reach the route: the id check
    // (plugins/input.ts) answers it 404 like any other id that cannot exist, after the credential.
    routerOptions: { maxParamLength: 16 * 1024 },
    // malformed URLs and the like never reach the router: answer them in the same shape
    frameworkErrors: (err, _request, reply) => handleError(err, reply.request, reply),
    // and neither do requests Node's HTTP parser refuses (bad bytes, framing, oversized headers)
    clientErrorHandler: answerClientError,
    // Node would answer an HTTP/1.1 request without Host itself: a bare 400 without x-request-id or
    // the error shape. Let it through; the onRequest hook below refuses it in the documented shape.
    http: { requireHostHeader: false },
  });
  // Likewise an `Expect` other than 100-continue: Node answers a bare 417. RFC 9110 §10.1.1 lets a
  // server ignore an expectation it does not know, so the request is served like any other.
  app.server.on('checkExpectation', (req, res) => app.server.emit('request', req, res));
  // A client may half-close its side once the request is sent (shutdown(SHUT_WR), `nc -N`): Node's
  // HTTP server would then abort the request and drop the answer of a handler still at work (one
  // waiting on PostgreSQL). Answer it, then close.
  (app.server as { httpAllowHalfOpen?: boolean }).httpAllowHalfOpen = true;
  // Stopping (SIGTERM, `breeze server stop`): Node's server.close() closes the keep-alive
  // connections idle at that moment, once. One whose request is still at work (waiting for its
  // group's commit, see store/group-commit.ts) falls idle only after its answer, and its client
  // would go on sending on it: close those as they fall idle, so the server stops in milliseconds
  // rather than after the keep-alive timeout. Every request already received is still answered.
  app.addHook('preClose', (done) => {
    if (app.server.listening) {
      const timer = setInterval(() => app.server.closeIdleConnections(), 10);
      timer.unref();
      app.server.once('close', () => clearInterval(timer));
    }
    done();
  });

  // A body-less POST or DELETE (rotate, disable, enable, delete) sent with `content-type:
  // application/json` or `text/plain` and no bytes, as many HTTP clients do by default, is a request
  // without a body, not malformed JSON: a route that needs a body still answers 400
  // VALIDATION_FAILED from its schema.
  const parseJson = app.getDefaultJsonParser('remove', 'remove');
  app.removeContentTypeParser(['application/json', 'text/plain']);
  // JSON text is UTF-8 (RFC 8259 §8.1): bytes that are not would be decoded to U+FFFD and stored
  // as something the client never sent, so they are malformed JSON.
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const bytes = body as Buffer;
    if (bytes.length === 0) done(null, undefined);
    else if (!isUtf8(bytes))
      done(new HttpError('VALIDATION_FAILED', 'Malformed JSON body: not UTF-8.'), undefined);
    else parseJson(request, bytes.toString('utf8'), done);
  });
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_request, body, done) => {
    done(null, body.length === 0 ? undefined : body);
  });
  // Any other type is read like these (so past 64 KiB it is a 413, chunked too: API.md), then
  // refused as unsupported; no bytes at all is a request without a body, as above.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => {
    if ((body as Buffer).length === 0) done(null, undefined);
    else done(new HttpError('VALIDATION_FAILED', UNSUPPORTED_TYPE), undefined);
  });

  const bodyAjv = makeAjv(false);
  const textAjv = makeAjv(true);
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? bodyAjv : textAjv).compile(schema as object),
  );

  const hasher = createSecretHasher(config.pepper);
  const cache = new VerificationCache(config.keyCacheTtlMs);
  const audit = new AuditService(opts.store, { clock, disabled: opts.auditDisabled ?? false });
  const ctx: ServerContext = {
    store: opts.store,
    config,
    mailer: opts.mailer,
    hasher,
    cache,
    clock,
    keys: new KeyService(opts.store, hasher, cache, clock, audit),
    audit,
    usage: new UsageTracker(opts.store, {
      count: config.countUsage,
      onError: (err, what) => app.log.warn({ err }, what),
    }),
  };
  app.decorate('breeze', ctx);
  registerUsage(app);
  const jwt = new JwtService(ctx);
  app.decorate('jwtService', jwt);
  const webhooks = setupWebhooks(app, ctx, jwt);

  // callback style: no promise per request for a header
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400 (see `requireHostHeader` above)
    if (request.headers.host === undefined && request.raw.httpVersion === '1.1') {
      return done(new HttpError('VALIDATION_FAILED', 'Malformed HTTP request: no Host header.'));
    }
    // API.md: a body over 64 KiB is a 413 whatever its type, said before it is read (chunked
    // bodies are counted as they are read, every type: see the '*' parser)
    const length = request.headers['content-length'];
    if (length !== undefined && Number(length) > BODY_LIMIT) {
      return done(new HttpError('PAYLOAD_TOO_LARGE', 'Request body is larger than 64 KiB.'));
    }
    // a compressed body would be read as if it were not (and an uncompressed one so labelled taken)
    const coding = request.headers['content-encoding'];
    if (coding !== undefined && coding.trim().toLowerCase() !== 'identity') {
      return done(
        new HttpError('VALIDATION_FAILED', 'Content-Encoding is not supported: send the body uncompressed.'),
      );
    }
    done();
  });
  registerErrorHandling(app);

  await registerOpenApi(app);

  registerAuth(app, {
    jwt: (token) => jwt.authenticate(token),
    session: new Sessions(ctx).authenticator,
    ...opts.authenticators,
  });
  await registerIpRateLimit(app);
  app.decorate('breezeInvitationLimit', invitationLimit(app));
  registerPerKeyLimit(app, config.rateLimitPerKey);
  registerIdCheck(app);

  await app.register(healthRoutes);
  await app.register(meRoutes);
  await app.register(apiKeyRoutes);
  await app.register(orgRoutes);
  await app.register(memberRoutes);
  await app.register(invitationRoutes);
  await app.register(projectRoutes);
  await app.register(jwksRoutes, { jwt });
  await app.register(authCodeRoutes, { jwt });
  await app.register(cliLoginRoutes);
  await app.register(pageRoutes);
  await app.register(auditRoutes);
  startAuditPruner(app, opts.auditPruner);
  await app.register(webhookRoutes, { webhooks });
  await app.register(verifyRoutes);
  await app.register(keyUsageRoutes);
  await app.register(oidcRoutes);
  await app.register(leakRoutes);
  await app.register(orgSettingsRoutes);
  return app;
}
