import { afterEach, describe, expect, it } from 'vitest';
import { KeyRateLimiter } from '../../src/server/plugins/key-rate-limit.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('KeyRateLimiter (a fixed window per key, opened by its first request)', () => {
  it('allows max requests a window, counts down remaining, and says when the window ends', () => {
    let now = 1_000_000;
    const limiter = new KeyRateLimiter(3, 60_000, () => now);
    expect(limiter.hit('k1')).toEqual({ allowed: true, limit: 3, remaining: 2, resetS: 60 });
    now += 15_500;
    expect(limiter.hit('k1')).toEqual({ allowed: true, limit: 3, remaining: 1, resetS: 45 });
    expect(limiter.hit('k1')).toMatchObject({ allowed: true, remaining: 0 });
    expect(limiter.hit('k1')).toEqual({ allowed: false, limit: 3, remaining: 0, resetS: 45 });
    // another key has its own window
    expect(limiter.hit('k2')).toMatchObject({ allowed: true, remaining: 2, resetS: 60 });
    // the window of k1 ends 60 s after its first request, not after its last
    now += 44_499;
    expect(limiter.hit('k1')).toEqual({ allowed: false, limit: 3, remaining: 0, resetS: 1 });
    now += 1;
    expect(limiter.hit('k1')).toEqual({ allowed: true, limit: 3, remaining: 2, resetS: 60 });
  });
});

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('per-key limit over HTTP', () => {
  it("a key's own requests and verifications of it spend one budget; the verifier spends none of its own", async () => {
    server = await startTestServer({ config: { rateLimitPerKey: 4 } });
    const target = await server.seedKey({ email: 'owner@example.com', scopes: ['read'] });
    const verifier = await server.seedKey({ email: 'owner@example.com', scopes: ['read', 'verify'] });
    const verify = () =>
      server!.app.inject({
        method: 'POST',
        url: '/v1/keys/verify',
        headers: { 'x-api-key': verifier.apiKey },
        payload: { key: target.apiKey },
      });
    const me = await server.app.inject({ url: '/v1/me', headers: { 'xi-api-key': target.apiKey } });
    expect(me.statusCode).toBe(200);
    expect(me.headers['ratelimit-limit']).toBe('4');
    expect(me.headers['ratelimit-remaining']).toBe('3');
    expect(Number(me.headers['ratelimit-reset'])).toBeGreaterThanOrEqual(59);
    expect(Number(me.headers['ratelimit-reset'])).toBeLessThanOrEqual(60);
    for (const remaining of [2, 1, 0]) {
      const r = await verify();
      expect(r.json()).toMatchObject({ valid: true, code: 'VALID', ratelimit: { limit: 4, remaining } });
    }
    const over = await verify();
    expect(over.json()).toMatchObject({ valid: false, code: 'RATE_LIMITED', ratelimit: { remaining: 0 } });
    expect(over.json().ratelimit.reset_s).toBeGreaterThanOrEqual(1);
    const meOver = await server.app.inject({ url: '/v1/me', headers: { 'xi-api-key': target.apiKey } });
    expect(meOver.statusCode).toBe(429);
    expect(meOver.headers['retry-after']).toMatch(/^\d+$/);
    expect(meOver.headers['ratelimit-reset']).toBe(meOver.headers['retry-after']);
    // five verifications later the verifier's own budget is untouched
    const own = await server.app.inject({ url: '/v1/me', headers: { 'xi-api-key': verifier.apiKey } });
    expect(own.statusCode).toBe(200);
    expect(own.headers['ratelimit-remaining']).toBe('3');
  });

  it('routes without authentication carry no per-key limit', async () => {
    server = await startTestServer({ config: { rateLimitPerKey: 1 } });
    for (let i = 0; i < 3; i++) {
      const r = await server.app.inject({ url: '/healthz' });
      expect(r.statusCode).toBe(200);
      expect(r.headers['ratelimit-limit']).toBeUndefined();
    }
  });
});
