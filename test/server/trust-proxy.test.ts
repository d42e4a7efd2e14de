import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { clientIp, parseTrustedProxies } from '../../src/server/client-ip.js';
import { CODE_REQUESTS_PER_IP } from '../../src/server/routes/auth-code.js';
import { runCli, spawnCli, stopServe, tempConfigDir, waitForOutput } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * `breeze serve --trust-proxy` (docs/self-hosting.md "Behind a load balancer"): without it the
 * client is the address that connects and `X-Forwarded-For` is ignored; with it, a request from a
 * trusted proxy counts as the right-most address of the header that is not a trusted proxy — in
 * per-IP limits and in audit events — and what a client writes into the header itself is not
 * believed.
 */

const PROXY = '127.0.0.1';

describe('parseTrustedProxies', () => {
  it('takes addresses, CIDR ranges and the named ranges, comma-separated', () => {
    expect(parseTrustedProxies('10.0.0.0/8, 192.0.2.7,fd00::/8 ,::1,loopback,linklocal,uniquelocal')).toEqual(
      ['10.0.0.0/8', '192.0.2.7', 'fd00::/8', '::1', 'loopback', 'linklocal', 'uniquelocal'],
    );
  });

  it('refuses what is not one, a range of every address, and an empty list', () => {
    for (const bad of [
      'lb.internal',
      '10.0.0.0/33',
      '::/129',
      '10.0.0.1/8/8',
      '10.0.0.0/x',
      '300.1.1.1',
      'true',
      '2',
    ]) {
      expect(() => parseTrustedProxies(bad), bad).toThrow(/is not an address, a CIDR range/);
    }
    // ranges that take in much of the Internet: its clients would be trusted proxies themselves
    for (const wide of ['0.0.0.0/0', '0.0.0.0/1', '10.0.0.0/7', '::/0', '2000::/3']) {
      expect(() => parseTrustedProxies(wide), wide).toThrow(/is wider than \/8/);
    }
    // an IPv4 range spelled as IPv4-mapped IPv6 (`::ffff:0.0.0.0/96` is every IPv4 address)
    for (const mapped of ['::ffff:0.0.0.0/96', '::ffff:10.0.0.0/104']) {
      expect(() => parseTrustedProxies(mapped), mapped).toThrow(/write an IPv4 range as IPv4/);
    }
    expect(() => parseTrustedProxies(' , ')).toThrow(/no address/);
  });
});

describe('clientIp', () => {
  const peer = { remoteAddress: '10.0.0.5' };
  it('keeps an address, drops a port a balancer wrote, and never passes on what is no address', () => {
    expect(clientIp({ ip: '203.0.113.5', socket: peer })).toBe('203.0.113.5');
    expect(clientIp({ ip: '2001:db8::1', socket: peer })).toBe('2001:db8::1');
    expect(clientIp({ ip: '203.0.113.5:4444', socket: peer })).toBe('203.0.113.5');
    expect(clientIp({ ip: '[2001:db8::1]:4444', socket: peer })).toBe('2001:db8::1');
    expect(clientIp({ ip: '[2001:db8::1]', socket: peer })).toBe('2001:db8::1');
    for (const junk of ['garbage<b>', 'unknown', '999.1.1.1:80', '[203.0.113.5]:1', '']) {
      expect(clientIp({ ip: junk, socket: peer }), junk).toBe('10.0.0.5');
    }
  });
});

describe('client addresses behind a proxy', () => {
  let s: TestServer | undefined;
  afterEach(async () => {
    await s?.close();
    s = undefined;
  });

  const codeRequest = (i: number, remoteAddress: string, forwardedFor?: string): InjectOptions => ({
    method: 'POST',
    url: '/auth/code',
    remoteAddress,
    headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
    payload: { email: `proxy-${i}@example.com`, type: 'api_key' },
  });

  /** Spends the per-IP budget of POST /auth/code; returns the statuses. */
  async function spend(make: (i: number) => InjectOptions): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < CODE_REQUESTS_PER_IP.max; i++) out.push((await s!.app.inject(make(i))).statusCode);
    return out;
  }

  it('by default, X-Forwarded-For is ignored: a client cannot get a fresh limit by sending one', async () => {
    s = await startTestServer();
    const statuses = await spend((i) => codeRequest(i, '192.0.2.10', `203.0.113.${i}`));
    expect(statuses.every((c) => c === 201)).toBe(true);
    const again = await s.app.inject(codeRequest(99, '192.0.2.10', '203.0.113.200'));
    expect(again.statusCode).toBe(429);
  });

  it('with --trust-proxy, each client behind the proxy has its own limit, and a forged hop counts for nothing', async () => {
    s = await startTestServer({ config: { trustProxy: [PROXY] } });
    const statuses = await spend((i) => codeRequest(i, PROXY, '203.0.113.1'));
    expect(statuses.every((c) => c === 201)).toBe(true);
    expect((await s.app.inject(codeRequest(50, PROXY, '203.0.113.1'))).statusCode).toBe(429);
    // another client behind the same proxy
    expect((await s.app.inject(codeRequest(51, PROXY, '203.0.113.2'))).statusCode).toBe(201);
    // the first client wrote a forged address into the header itself; the proxy appended its real one
    expect((await s.app.inject(codeRequest(52, PROXY, '198.51.100.9, 203.0.113.1'))).statusCode).toBe(429);
    // a peer that is not a trusted proxy is the client itself, whatever it sends
    const direct = await spend((i) => codeRequest(100 + i, '192.0.2.20', `198.51.100.${i}`));
    expect(direct.every((c) => c === 201)).toBe(true);
    expect((await s.app.inject(codeRequest(200, '192.0.2.20', '198.51.100.77'))).statusCode).toBe(429);
  });

  it('a port in the forwarded address (some balancers add one) gets a client no new limit', async () => {
    s = await startTestServer({ config: { trustProxy: [PROXY] } });
    const statuses = await spend((i) => codeRequest(i, PROXY, `203.0.113.1:${40000 + i}`));
    expect(statuses.every((c) => c === 201)).toBe(true);
    expect((await s.app.inject(codeRequest(60, PROXY, '203.0.113.1:50000'))).statusCode).toBe(429);
    expect((await s.app.inject(codeRequest(61, PROXY, '[2001:db8::9]:50000'))).statusCode).toBe(201);
  });

  for (const trust of [['127.0.0.1'], ['loopback']]) {
    it(`a proxy that connects over IPv6 as ::ffff:127.0.0.1 is trusted by ${trust}`, async () => {
      s = await startTestServer({ config: { trustProxy: trust } });
      const statuses = await spend((i) => codeRequest(i, '::ffff:127.0.0.1', '203.0.113.1'));
      expect(statuses.every((c) => c === 201)).toBe(true);
      expect((await s.app.inject(codeRequest(70, '::ffff:127.0.0.1', '203.0.113.1'))).statusCode).toBe(429);
      expect((await s.app.inject(codeRequest(71, '::ffff:127.0.0.1', '203.0.113.2'))).statusCode).toBe(201);
    });
  }

  it('audit events record the client the trusted proxy names, else the connecting address', async () => {
    s = await startTestServer({ config: { trustProxy: ['127.0.0.0/8'] } });
    const { apiKey } = await s.seedKey();
    const create = (name: string, remoteAddress: string, forwardedFor: string) =>
      s!.app.inject({
        method: 'POST',
        url: '/v1/api-keys',
        remoteAddress,
        headers: { 'xi-api-key': apiKey, 'x-forwarded-for': forwardedFor },
        payload: { name },
      });
    expect((await create('via proxy', '127.0.0.2', '198.51.100.1, 203.0.113.7')).statusCode).toBe(201);
    expect((await create('direct', '192.0.2.30', '203.0.113.8')).statusCode).toBe(201);
    // what no proxy writes: the address of the proxy that passed it on, never the text
    expect((await create('junk', '127.0.0.3', 'garbage<b>')).statusCode).toBe(201);
    const res = await s.app.inject({
      method: 'GET',
      url: '/v1/audit-events?action=key.created',
      headers: { 'xi-api-key': apiKey },
    });
    const events = (res.json() as { data: Array<{ ip: string; details: { name: string } }> }).data;
    const ipOf = (name: string) => events.find((e) => e.details.name === name)?.ip;
    expect(ipOf('via proxy')).toBe('203.0.113.7');
    expect(ipOf('direct')).toBe('192.0.2.30');
    expect(ipOf('junk')).toBe('127.0.0.3');
  });
});

describe('breeze serve --trust-proxy', () => {
  it('a bad list is a usage error (exit 2), from the flag or BREEZE_TRUST_PROXY', async () => {
    const t = tempConfigDir();
    try {
      const flag = await runCli(['serve', '--port', '0', '--trust-proxy', 'lb.internal'], {
        configDir: t.dir,
      });
      expect(flag.code).toBe(2);
      expect(flag.stderr).toContain('Invalid --trust-proxy: "lb.internal" is not an address');
      const env = await runCli(['serve', '--port', '0'], {
        configDir: t.dir,
        env: { BREEZE_TRUST_PROXY: '0.0.0.0/0' },
      });
      expect(env.code).toBe(2);
      expect(env.stderr).toContain('is wider than /8');
    } finally {
      t.cleanup();
    }
  });

  /**
   * Runs `breeze serve` with `args` and `env` on a fresh data dir; `post(i, client)` sends
   * POST /auth/code (10/min per IP) with `X-Forwarded-For: client` and answers its status.
   */
  async function served(
    args: string[],
    env: Record<string, string>,
    run: (post: (i: number, client: string) => Promise<number>) => Promise<void>,
  ): Promise<void> {
    const t = tempConfigDir();
    const proc = spawnCli(['serve', '--port', '0', '--data-dir', join(t.dir, 'data'), ...args], {
      configDir: t.dir,
      env,
    });
    try {
      proc.stdout?.resume();
      const url = (await waitForOutput(proc, /listening on (http:\/\/127\.0\.0\.1:\d+)/))[1] as string;
      await run((i, client) =>
        fetch(`${url}/auth/code`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-forwarded-for': client },
          body: JSON.stringify({ email: `served-${i}@example.com`, type: 'api_key' }),
        }).then((r) => r.status),
      );
    } finally {
      await stopServe(proc);
      t.cleanup();
    }
  }

  it('an empty BREEZE_TRUST_PROXY (a template left blank) trusts no proxy, as when unset', async () => {
    await served([], { BREEZE_TRUST_PROXY: ' ' }, async (post) => {
      for (let i = 0; i < CODE_REQUESTS_PER_IP.max; i++) expect(await post(i, `203.0.113.${i}`)).toBe(201);
      expect(await post(99, '203.0.113.99')).toBe(429);
    });
  }, 60_000);

  for (const via of ['flag', 'env'] as const) {
    it(`a served instance counts clients behind the proxy apart (${via})`, async () => {
      const args = via === 'flag' ? ['--trust-proxy', 'loopback'] : [];
      const env: Record<string, string> = via === 'env' ? { BREEZE_TRUST_PROXY: 'loopback' } : {};
      await served(args, env, async (post) => {
        for (let i = 0; i < CODE_REQUESTS_PER_IP.max; i++) expect(await post(i, '203.0.113.1')).toBe(201);
        expect(await post(98, '203.0.113.1')).toBe(429);
        expect(await post(99, '203.0.113.2')).toBe(201);
      });
    }, 60_000);
  }
});
