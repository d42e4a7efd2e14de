import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import type { KeyRateLimitResult } from '../context.js';
import { rateLimitedError } from './rate-limit.js';

/** How many keys' windows are kept at most; past it, expired windows go first, then the oldest. */
const MAX_WINDOWS = 100_000;

interface Window {
  /** when the window began (ms) */
  start: number;
  /** requests counted in it */
  count: number;
}

/**
 * The per-key limit: a fixed window of `windowMs` per key that opens with the key's first request
 * (what @fastify/rate-limit's local store did), counted synchronously: a request costs a Map lookup
 * and no promise. Counters are per instance. One budget per key, spent by the key's own requests
 * and by verifications of it (services/verification.ts).
 */
export class KeyRateLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(
    readonly max: number,
    readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one request of `keyId`; `allowed` false once the window holds more than `max`. */
  hit(keyId: string): KeyRateLimitResult {
    const now = this.now();
    let w = this.windows.get(keyId);
    if (w === undefined || w.start + this.windowMs <= now) {
      if (w !== undefined) this.windows.delete(keyId);
      else if (this.windows.size >= MAX_WINDOWS) this.evict(now);
      // (re)inserted: the map stays in the order windows opened, oldest first
      w = { start: now, count: 0 };
      this.windows.set(keyId, w);
    }
    w.count++;
    return {
      allowed: w.count <= this.max,
      limit: this.max,
      remaining: Math.max(0, this.max - w.count),
      resetS: Math.max(1, Math.ceil((w.start + this.windowMs - now) / 1000)),
    };
  }

  private evict(now: number): void {
    for (const [keyId, w] of this.windows) {
      // oldest first: once one is still open, so are all after it
      if (w.start + this.windowMs > now) break;
      this.windows.delete(keyId);
    }
    if (this.windows.size >= MAX_WINDOWS) {
      const oldest = this.windows.keys().next().value;
      if (oldest !== undefined) this.windows.delete(oldest);
    }
  }
}

/**
 * When `perMinute > 0`: every API-key–authenticated request of a route with `config.auth` counts
 * against its key's limit (the hook is attached to those routes only, after authentication; routes
 * with `config.keyRateLimit: false` spend another key's budget instead and get none). Exposes the
 * limiter as `app.breeze.keyRateLimit` for verifications. Register before the routes.
 */
export function registerPerKeyLimit(app: FastifyInstance, perMinute: number): void {
  if (perMinute <= 0) return;
  const limiter = new KeyRateLimiter(perMinute);
  app.breeze.keyRateLimit = (keyId) => limiter.hit(keyId);

  // callback style: no promise per request
  const perKey: preHandlerHookHandler = function breezeKeyRateLimit(request, reply, done) {
    const keyId = request.auth?.keyId;
    if (!keyId) return done();
    const r = limiter.hit(keyId);
    reply.header('ratelimit-limit', r.limit);
    reply.header('ratelimit-remaining', r.remaining);
    // seconds until the window ends: the third field of the IETF RateLimit header fields draft
    reply.header('ratelimit-reset', r.resetS);
    if (r.allowed) return done();
    done(rateLimitedError(request, { after: `${r.resetS}s`, ttl: r.resetS * 1000 }));
  };
  app.addHook('onRoute', (route) => {
    if ((route.config?.auth ?? 'none') === 'none' || route.config?.keyRateLimit === false) return;
    const own = route.preHandler === undefined ? [] : [route.preHandler].flat();
    route.preHandler = [perKey, ...own];
  });
}
