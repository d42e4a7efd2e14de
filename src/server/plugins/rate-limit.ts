import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from '../../core/errors.js';
import { ipBucket } from '../client-ip.js';

/** The key of a per-IP limit: `prefix` and the client's bucket (an IPv6 address counts by its /64). */
export function perIpKey(prefix: string): (req: FastifyRequest) => string {
  return (req) => `${prefix}:${ipBucket(req.ip)}`;
}

/** The 429 every limiter answers with; `Retry-After` is set by the limiter itself. */
export function rateLimitedError(_req: FastifyRequest, context: { after: string; ttl: number }): HttpError {
  return new HttpError('RATE_LIMITED', `Too many requests: retry in ${Math.ceil(context.ttl / 1000)} s.`, {
    headers: { 'retry-after': String(Math.max(1, Math.ceil(context.ttl / 1000))) },
  });
}

/**
 * Registers @fastify/rate-limit (routes opt in with `config.rateLimit`; a limit without its own
 * `keyGenerator` counts per IP through `ipBucket`, so IPv6 clients count by their /64) and, when `perMinute > 0`,
 * a per-key limit on every API-key–authenticated request. Counters are per instance.
 */
export async function registerKeyRateLimit(app: FastifyInstance, perMinute: number): Promise<void> {
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: rateLimitedError,
    keyGenerator: perIpKey('ip'),
  });
  if (perMinute <= 0) return;
  // createRateLimit, not rateLimit(): the latter shares one "already limited" flag per request with
  // route-level limiters, so a route with its own `config.rateLimit` would silently skip this one.
  const perKey = app.createRateLimit({
    max: perMinute,
    timeWindow: 60_000,
    keyGenerator: (req: FastifyRequest) => `key:${req.auth?.keyId ?? ''}`,
  });
  // a verification is a use of the VERIFIED key (services/verification.ts counts it against that
  // key's limit through this same limiter), so the checked key shares one budget across both paths
  app.breeze.keyRateLimit = async (keyId: string) => {
    const r = await perKey({ auth: { keyId }, routeOptions: { config: {} } } as unknown as FastifyRequest);
    // (isAllowed means "skipped": no allow list is configured here, so it never is)
    if (r.isAllowed) return { allowed: true, limit: perMinute, remaining: perMinute, resetS: 60 };
    return {
      allowed: !r.isExceeded,
      limit: r.max ?? perMinute,
      remaining: Math.max(0, r.remaining ?? 0),
      resetS: Math.max(1, r.ttlInSeconds ?? 60),
    };
  };
  app.addHook('preHandler', async (request, reply) => {
    if (!request.auth?.keyId) return;
    // routes that spend another key's budget instead (POST /v1/keys/verify)
    if (request.routeOptions.config?.keyRateLimit === false) return;
    const r = await perKey(request);
    if (r.isAllowed) return;
    reply.header('ratelimit-limit', String(r.max));
    reply.header('ratelimit-remaining', String(Math.max(0, r.remaining)));
    if (r.isExceeded) throw rateLimitedError(request, { after: `${r.ttlInSeconds}s`, ttl: r.ttl });
  });
}
