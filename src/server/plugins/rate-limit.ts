import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from '../../core/errors.js';
import { clientIp, ipBucket } from '../client-ip.js';

/** The key of a per-IP limit: `prefix` and the client's bucket (an IPv6 address counts by its /64). */
export function perIpKey(prefix: string): (req: FastifyRequest) => string {
  return (req) => `${prefix}:${ipBucket(clientIp(req))}`;
}

/** The 429 every limiter answers with; `Retry-After` is set by the limiter itself. */
export function rateLimitedError(_req: FastifyRequest, context: { after: string; ttl: number }): HttpError {
  return new HttpError('RATE_LIMITED', `Too many requests: retry in ${Math.ceil(context.ttl / 1000)} s.`, {
    headers: { 'retry-after': String(Math.max(1, Math.ceil(context.ttl / 1000))) },
  });
}

/**
 * Registers @fastify/rate-limit for the per-IP limits routes opt in to with `config.rateLimit` (a
 * limit without its own `keyGenerator` counts per IP through `ipBucket`, so IPv6 clients count by
 * their /64). Counters are per instance. The per-key limit is ./key-rate-limit.ts.
 */
export async function registerIpRateLimit(app: FastifyInstance): Promise<void> {
  await app.register(rateLimit, {
    global: false,
    // RateLimit-Limit / -Remaining / -Reset (API.md's `RateLimit-*`, the names the per-key limit
    // sends too), not the X-RateLimit-* of the plugin's default
    enableDraftSpec: true,
    errorResponseBuilder: rateLimitedError,
    keyGenerator: perIpKey('ip'),
  });
}
