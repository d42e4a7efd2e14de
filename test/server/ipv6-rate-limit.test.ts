import { createHash, randomBytes } from 'node:crypto';
import type { InjectOptions } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ipBucket } from '../../src/server/client-ip.js';
import { CODE_REQUESTS_PER_IP } from '../../src/server/routes/auth-code.js';
import { LOGIN_STARTS_PER_IP } from '../../src/server/routes/cli-logins.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Per-IP limits count an IPv6 client by its /64 (a subscriber holds a whole /64: counting single
 * addresses would hand it 2^64 buckets). Black-box over `inject` with `remoteAddress` variants:
 * addresses of one /64 share one bucket, another /64 has its own.
 */

/** Addresses of 2001:db8:1:2::/64, spelled every way a socket may report them. */
const SAME_64 = [
  '2001:db8:1:2::1',
  '2001:db8:1:2:ffff:ffff:ffff:ffff',
  '2001:0db8:0001:0002:abcd:0:0:7',
  '2001:DB8:1:2::dead:beef',
  '2001:db8:1:2:1:2:192.0.2.1',
  '2001:db8:1:2::1%eth0',
];
const OTHER_64 = '2001:db8:1:3::1';

describe('ipBucket', () => {
  it('maps every address of one /64 to one bucket, and other /64s elsewhere', () => {
    const buckets = new Set(SAME_64.map(ipBucket));
    expect([...buckets]).toEqual(['2001:db8:1:2::/64']);
    expect(ipBucket(OTHER_64)).toBe('2001:db8:1:3::/64');
    expect(ipBucket('::1')).toBe('0:0:0:0::/64');
    expect(ipBucket('2001:db8::')).toBe('2001:db8:0:0::/64');
  });
  it('keeps IPv4 (also IPv4-mapped IPv6) per address', () => {
    expect(ipBucket('192.0.2.7')).toBe('192.0.2.7');
    expect(ipBucket('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(ipBucket('::ffff:c000:207')).toBe('192.0.2.7');
    expect(ipBucket('192.0.2.8')).not.toBe(ipBucket('192.0.2.7'));
  });
});

describe('per-IP limits over IPv6', () => {
  let s: TestServer;
  beforeEach(async () => {
    s = await startTestServer();
  });
  afterEach(() => s.close());

  /** Sends `count` requests cycling through the /64's address variants; returns their statuses. */
  async function burst(count: number, make: (i: number) => InjectOptions): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const res = await s.app.inject({ ...make(i), remoteAddress: SAME_64[i % SAME_64.length] });
      out.push(res.statusCode);
    }
    return out;
  }

  it('POST /auth/code: one /64 shares the 10/min bucket', async () => {
    const req = (i: number): InjectOptions => ({
      method: 'POST',
      url: '/auth/code',
      payload: { email: `v6-${i}@example.com`, type: 'api_key' },
    });
    const statuses = await burst(CODE_REQUESTS_PER_IP.max + 1, req);
    expect(statuses.slice(0, -1).every((c) => c === 201)).toBe(true);
    expect(statuses.at(-1)).toBe(429);
    const other = await s.app.inject({ ...req(99), remoteAddress: OTHER_64 });
    expect(other.statusCode).toBe(201);
  });

  it('POST /v1/cli/logins: one /64 shares the bucket', async () => {
    const req = (): InjectOptions => ({
      method: 'POST',
      url: '/v1/cli/logins',
      payload: {
        code_challenge: createHash('sha256')
          .update(randomBytes(32).toString('base64url'))
          .digest('base64url'),
        code_challenge_method: 'S256',
        client_name: 'breeze/1.0.0',
        hostname: 'v6',
      },
    });
    const statuses = await burst(LOGIN_STARTS_PER_IP.max + 1, req);
    expect(statuses.slice(0, -1).every((c) => c === 201)).toBe(true);
    expect(statuses.at(-1)).toBe(429);
    expect((await s.app.inject({ ...req(), remoteAddress: OTHER_64 })).statusCode).toBe(201);
  });

  it('POST /login (page): one /64 shares the bucket', async () => {
    // the page limit is 20/min; the form is refused before any mail (no CSRF token), still counted
    const req = (): InjectOptions => ({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'email=a%40example.com',
    });
    const statuses = await burst(21, req);
    expect(statuses.slice(0, -1).every((c) => c !== 429)).toBe(true);
    expect(statuses.at(-1)).toBe(429);
    expect((await s.app.inject({ ...req(), remoteAddress: OTHER_64 })).statusCode).not.toBe(429);
  });
});
