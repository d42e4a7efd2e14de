/**
 * Black-box: the SDK against a real Breeze (the server's own buildApp over SQLite, listening on
 * 127.0.0.1 port 0). Only HTTP crosses between them; the server code is used here to seed keys and
 * to sign a webhook with the server's actual signing key, never by the package.
 */
import { sign } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer as createTcpServer, type Server, type Socket } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { breezeExpress } from '../../packages/verify/src/express.js';
import { breezeFastify } from '../../packages/verify/src/fastify.js';
import { withBreeze } from '../../packages/verify/src/fetch.js';
import { createVerifier, type Verifier } from '../../packages/verify/src/verifier.js';
import { verifyWebhook } from '../../packages/verify/src/webhook.js';
import { makeKey, until } from '../../packages/verify/test/fake-breeze.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const PUBLIC_URL = 'https://breeze.test.example';
let srv: TestServer;
let url: string;
let verifyKey: string;
let ownerKey: string;
const verifiers: Verifier[] = [];

beforeAll(async () => {
  srv = await startTestServer({ config: { rateLimitPerKey: 0, publicUrl: PUBLIC_URL } });
  url = await srv.app.listen({ host: '127.0.0.1', port: 0 });
  ({ apiKey: verifyKey } = await srv.seedKey({
    email: 'owner@example.com',
    scopes: ['read', 'verify'],
    name: 'verifier',
  }));
  ({ apiKey: ownerKey } = await srv.seedKey({
    email: 'owner@example.com',
    scopes: ['read', 'write', 'admin'],
  }));
});
// each verifier holds one revocation stream, and the server allows few per key: close them as we go
afterEach(async () => {
  await Promise.all(verifiers.splice(0).map((v) => v.close()));
});
afterAll(async () => {
  await srv?.close();
});

function verifier(
  o: { server?: string; cacheTtlMs?: number; events?: boolean; jwtUsers?: string[] } = {},
): Verifier {
  const v = createVerifier({ server: url, apiKey: verifyKey, issuer: PUBLIC_URL, ...o });
  verifiers.push(v);
  return v;
}

async function api(method: string, path: string, body?: unknown, key = ownerKey) {
  const res = await srv.app.inject({
    method: method as 'POST',
    url: path,
    headers: { 'xi-api-key': key, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { payload: JSON.stringify(body) } : {}),
  });
  return {
    status: res.statusCode,
    json: res.body ? (JSON.parse(res.body) as Record<string, unknown>) : null,
  };
}

async function mint(scopes: string[], email = 'owner@example.com') {
  return srv.seedKey({ email, scopes: scopes as never, name: `k-${scopes.join('-')}` });
}

describe('every verify code through the SDK', () => {
  it('VALID with the key, its organization, project, user and effective scopes', async () => {
    const v = verifier();
    const k = await mint(['read', 'write']);
    const r = await v.verify(k.apiKey, { scopes: ['read'] });
    expect(r).toMatchObject({
      valid: true,
      code: 'VALID',
      type: 'api_key',
      key_id: k.keyId,
      user: { id: k.userId, email: 'owner@example.com' },
      expires_at: null,
    });
    if (!r.valid) throw new Error('unreachable');
    expect(r.org_id).toMatch(/^org_/);
    expect(r.project_id).toMatch(/^proj_/);
    expect([...r.scopes].sort()).toEqual(['read', 'write']);
  });

  it("MALFORMED, NOT_FOUND (also for another organization's key), INSUFFICIENT_SCOPE", async () => {
    const v = verifier();
    expect(await v.verify('brz_nope')).toEqual({ valid: false, code: 'MALFORMED' });
    expect(await v.verify(makeKey())).toEqual({ valid: false, code: 'NOT_FOUND' });
    const foreign = await mint(['read', 'write', 'admin'], 'stranger@example.com');
    expect(await v.verify(foreign.apiKey)).toEqual({ valid: false, code: 'NOT_FOUND' });
    const reader = await mint(['read']);
    expect(await v.verify(reader.apiKey, { scopes: ['write'] })).toEqual({
      valid: false,
      code: 'INSUFFICIENT_SCOPE',
    });
  });

  it('DISABLED and EXPIRED', async () => {
    const v = verifier();
    const k = await mint(['read']);
    expect((await api('POST', `/v1/api-keys/${k.keyId}/disable`)).status).toBe(200);
    expect(await v.verify(k.apiKey)).toEqual({ valid: false, code: 'DISABLED' });
    const old = await srv.seedKey({
      email: 'owner@example.com',
      scopes: ['read'],
      expiresAt: new Date(Date.now() - 60_000).toISOString(),
    });
    expect(await v.verify(old.apiKey)).toEqual({ valid: false, code: 'EXPIRED' });
  });

  it('RATE_LIMITED once the checked key is over its limit', async () => {
    const limited = await startTestServer({ config: { rateLimitPerKey: 3, publicUrl: PUBLIC_URL } });
    try {
      const lurl = await limited.app.listen({ host: '127.0.0.1', port: 0 });
      const { apiKey: vk } = await limited.seedKey({ scopes: ['read', 'verify'] });
      const { apiKey: k } = await limited.seedKey({ scopes: ['read'] });
      const v = createVerifier({ server: lurl, apiKey: vk, cacheTtlMs: 0, negativeTtlMs: 0, events: false });
      verifiers.push(v);
      const codes: string[] = [];
      for (let i = 0; i < 5; i++) codes.push((await v.verify(k)).code);
      expect(codes.slice(0, 3)).toEqual(['VALID', 'VALID', 'VALID']);
      expect(codes.slice(3)).toEqual(['RATE_LIMITED', 'RATE_LIMITED']);
    } finally {
      await limited.close();
    }
  });

  it('a JWT of the email-code flow, offline against the JWKS, for the users allowed only', async () => {
    const user = await srv.store.users.ensure('owner@example.com');
    const v = verifier({ jwtUsers: [user.id] });
    const { token } = await srv.app.jwtService.issue(user.id);
    expect(await v.verify(token)).toMatchObject({ valid: true, type: 'jwt', user: { id: user.id } });
    // a signature ending in "AA" already would stay valid: change it for sure
    expect(await v.verify(`${token.slice(0, -2)}${token.endsWith('AA') ? 'gA' : 'AA'}`)).toMatchObject({
      valid: false,
    });
    // anyone can sign up on a shared server: a stranger's genuine JWT proves no membership
    const stranger = await srv.store.users.ensure('signed-up-stranger@example.com');
    const { token: theirs } = await srv.app.jwtService.issue(stranger.id);
    expect(await v.verify(theirs)).toEqual({ valid: false, code: 'NOT_FOUND' });
    // by default (PLATFORM.md: JWTs verified offline) a member of the verifier key's organization
    // passes, with that organization and the scopes of their role; the stranger does not
    const byDefault = verifier();
    expect(await byDefault.verify(token)).toMatchObject({
      valid: true,
      type: 'jwt',
      org_id: expect.stringMatching(/^org_/),
      user: { id: user.id, email: 'owner@example.com' },
      scopes: ['read', 'write', 'admin'],
    });
    expect(await byDefault.verify(theirs)).toEqual({ valid: false, code: 'NOT_FOUND' });
    const me = await api('GET', '/v1/me');
    const orgId = (me.json?.org as { id: string } | undefined)?.id;
    expect(orgId).toMatch(/^org_/);
    expect(await byDefault.verify(token)).toMatchObject({ org_id: orgId });
  });

  it('a key with "verify" alone (README: keys create --scopes verify) accepts a member\'s JWT', async () => {
    const { apiKey } = await srv.seedKey({
      email: 'owner@example.com',
      scopes: ['verify'],
      name: 'verify only',
    });
    const v = createVerifier({ server: url, apiKey, issuer: PUBLIC_URL, events: false });
    verifiers.push(v);
    const user = await srv.store.users.ensure('owner@example.com');
    const { token } = await srv.app.jwtService.issue(user.id);
    expect(await v.verify(token)).toMatchObject({ valid: true, type: 'jwt', user: { id: user.id } });
    // it reads the member list, nothing more of the organization
    const orgId = ((await api('GET', '/v1/me')).json?.org as { id: string } | undefined)?.id;
    expect(orgId).toMatch(/^org_/);
    const projects = await fetch(`${url}/v1/orgs/${orgId}/projects`, { headers: { 'x-api-key': apiKey } });
    expect(projects.status).toBe(403);
  });

  it('a verifier whose own key lacks "verify" gets a clear error, never an answer', async () => {
    const plain = await mint(['read', 'write', 'admin']);
    const v = createVerifier({ server: url, apiKey: plain.apiKey, events: false });
    verifiers.push(v);
    await expect(v.verify((await mint(['read'])).apiKey)).rejects.toMatchObject({ code: 'FORBIDDEN' });
  });
});

describe('revocation through the stream', () => {
  it('drops a cached answer within a second of the key being disabled, well inside the TTL', async () => {
    const v = verifier({ cacheTtlMs: 60_000 });
    await until(() => v.streamConnected, 5000);
    const k = await mint(['read']);
    expect(await v.verify(k.apiKey)).toMatchObject({ valid: true });
    expect(await v.verify(k.apiKey)).toMatchObject({ valid: true });
    const size = v.cacheSize;
    const started = Date.now();
    expect((await api('POST', `/v1/api-keys/${k.keyId}/disable`)).status).toBe(200);
    await until(() => v.cacheSize < size, 1500);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await v.verify(k.apiKey)).toEqual({ valid: false, code: 'DISABLED' });
  });

  it('resumes after a dropped stream with Last-Event-ID and applies what it missed', async () => {
    const proxy = await startCuttableProxy(new URL(url).port);
    try {
      const v = verifier({ server: proxy.url, cacheTtlMs: 60_000 });
      await until(() => v.streamConnected, 5000);
      // one event first, so the stream has an id to resume from
      const first = await mint(['read']);
      await v.verify(first.apiKey);
      await api('DELETE', `/v1/api-keys/${first.keyId}`);
      await until(() => v.cacheSize === 0, 2000);
      const k = await mint(['read']);
      expect(await v.verify(k.apiKey)).toMatchObject({ valid: true });
      proxy.cut(); // the stream drops; nothing gets through for a while
      await until(() => !v.streamConnected, 2000);
      expect((await api('POST', `/v1/api-keys/${k.keyId}/disable`)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 300));
      proxy.restore();
      await until(() => v.streamConnected, 10_000);
      await until(() => v.cacheSize === 0, 2000);
      expect(proxy.requests.filter((r) => r.startsWith('GET /v1/keys/events')).at(-1)).toMatch(
        /last-event-id: \d+/i,
      );
      expect(await v.verify(k.apiKey)).toEqual({ valid: false, code: 'DISABLED' });
    } finally {
      await proxy.close();
    }
  });
});

describe('guards over a real Breeze', () => {
  const cases = (read: string, foreign: string) =>
    [
      [{}, 401, 'AUTH_REQUIRED'],
      [{ 'xi-api-key': read }, 200, null],
      [{ 'x-api-key': read }, 200, null],
      [{ authorization: `Bearer ${read}` }, 200, null],
      [{ 'xi-api-key': makeKey(), 'x-api-key': read }, 401, 'AUTH_REQUIRED'],
      [{ 'x-api-key': foreign, authorization: `Bearer ${read}` }, 401, 'AUTH_REQUIRED'],
    ] as Array<[Record<string, string>, number, string | null]>;

  it('Fastify plugin: request.breeze, x-breeze-api-key-id, 401/403 in Breeze shape, public routes', async () => {
    const v = verifier();
    const app = Fastify();
    await app.register(breezeFastify, { verifier: v });
    app.get('/open', { config: { breeze: false } }, async (req) => ({ breeze: req.breeze }));
    app.get('/who', async (req) => ({ key_id: req.breeze?.key_id, org_id: req.breeze?.org_id }));
    app.post('/write', { config: { breeze: { scopes: ['write'] } } }, async () => ({ ok: true }));
    const reader = await mint(['read']);
    const foreign = await mint(['read'], 'stranger@example.com');
    for (const [headers, status, code] of cases(reader.apiKey, foreign.apiKey)) {
      const res = await app.inject({ method: 'GET', url: '/who', headers });
      expect(res.statusCode, JSON.stringify(Object.keys(headers))).toBe(status);
      if (code) {
        expect(res.json()).toEqual({
          error: {
            code,
            message: expect.any(String),
            statusCode: status,
            category: 'AUTH',
            request_id: expect.any(String),
          },
        });
        expect(res.headers['x-breeze-api-key-id']).toBeUndefined();
      } else {
        expect(res.headers['x-breeze-api-key-id']).toBe(reader.keyId);
        expect(res.json()).toMatchObject({ key_id: reader.keyId, org_id: expect.stringMatching(/^org_/) });
      }
    }
    expect((await app.inject({ method: 'GET', url: '/open' })).json()).toEqual({ breeze: null });
    const forbidden = await app.inject({
      method: 'POST',
      url: '/write',
      headers: { 'xi-api-key': reader.apiKey },
    });
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json().error.code).toBe('FORBIDDEN');
    const writer = await mint(['read', 'write']);
    expect(
      (await app.inject({ method: 'POST', url: '/write', headers: { 'x-api-key': writer.apiKey } }))
        .statusCode,
    ).toBe(200);
    await app.close();
  });

  it('Express middleware over a listening server', async () => {
    const v = verifier();
    const app = express();
    app.get('/who', breezeExpress({ verifier: v }), (req, res) => {
      res.json({ key_id: req.breeze?.key_id ?? null });
    });
    app.get('/write', breezeExpress({ verifier: v, scopes: ['write'] }), (_req, res) => {
      res.json({ ok: true });
    });
    const server = createHttpServer(app).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const reader = await mint(['read']);
      const foreign = await mint(['read'], 'stranger@example.com');
      for (const [headers, status, code] of cases(reader.apiKey, foreign.apiKey)) {
        const res = await fetch(`${base}/who`, { headers });
        expect(res.status).toBe(status);
        const body = (await res.json()) as { error?: { code: string; statusCode: number }; key_id?: string };
        if (code) {
          expect(body.error).toMatchObject({ code, statusCode: status });
          expect(res.headers.get('content-type')).toMatch(/application\/json/);
        } else {
          expect(body.key_id).toBe(reader.keyId);
          expect(res.headers.get('x-breeze-api-key-id')).toBe(reader.keyId);
        }
      }
      const res = await fetch(`${base}/write`, { headers: { 'xi-api-key': reader.apiKey } });
      expect(res.status).toBe(403);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('a Fetch-API (Request) handler, as in Hono, Next.js, Bun or Deno', async () => {
    const owner = await srv.store.users.ensure('owner@example.com');
    const v = verifier({ jwtUsers: [owner.id] });
    const handler = withBreeze({ verifier: v }, (_req, auth) =>
      Response.json({ key_id: auth.key_id, type: auth.type }),
    );
    const reader = await mint(['read']);
    const foreign = await mint(['read'], 'stranger@example.com');
    for (const [headers, status, code] of cases(reader.apiKey, foreign.apiKey)) {
      const res = await handler(new Request('http://voices.example/v1/voices', { headers }));
      expect(res.status).toBe(status);
      const body = (await res.json()) as { error?: { code: string }; key_id?: string };
      if (code) expect(body.error?.code).toBe(code);
      else {
        expect(body).toEqual({ key_id: reader.keyId, type: 'api_key' });
        expect(res.headers.get('x-breeze-api-key-id')).toBe(reader.keyId);
      }
    }
    const { token } = await srv.app.jwtService.issue(owner.id);
    const res = await handler(
      new Request('http://voices.example/', { headers: { authorization: `Bearer ${token}` } }),
    );
    expect(await res.json()).toEqual({ key_id: null, type: 'jwt' });
    // a user not allowed: refused like a key of another organization
    const stranger = await srv.store.users.ensure('jwt-stranger@example.com');
    const { token: theirs } = await srv.app.jwtService.issue(stranger.id);
    const refused = await handler(
      new Request('http://voices.example/', { headers: { authorization: `Bearer ${theirs}` } }),
    );
    expect(refused.status).toBe(401);
  });

  it('answers 429 with Retry-After when the key is over its rate limit, and 503 when Breeze is down', async () => {
    const limited = await startTestServer({ config: { rateLimitPerKey: 2 } });
    try {
      const lurl = await limited.app.listen({ host: '127.0.0.1', port: 0 });
      const { apiKey: vk } = await limited.seedKey({ scopes: ['read', 'verify'] });
      const { apiKey: k } = await limited.seedKey({ scopes: ['read'] });
      const v = createVerifier({ server: lurl, apiKey: vk, cacheTtlMs: 0, negativeTtlMs: 0, events: false });
      verifiers.push(v);
      const handler = withBreeze({ verifier: v }, () => new Response('ok'));
      const statuses: number[] = [];
      let last: Response | undefined;
      for (let i = 0; i < 3; i++) {
        last = await handler(new Request('http://x/', { headers: { 'xi-api-key': k } }));
        statuses.push(last.status);
      }
      expect(statuses).toEqual([200, 200, 429]);
      expect(Number(last?.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await last!.json()) as { error: { code: string } }).error.code).toBe('RATE_LIMITED');
      await limited.app.close();
      const down = await handler(new Request('http://x/', { headers: { 'xi-api-key': k } }));
      expect(down.status).toBe(503);
    } finally {
      await limited.close();
    }
  });
});

describe("verifyWebhook against the server's own signing key", () => {
  it('verifies a delivery signed with the JWT signing key, as published in /.well-known/jwks.json', async () => {
    // the server's current signing key, as its webhook sender uses it
    const key = await (
      srv.app.jwtService as unknown as {
        signingKey(): Promise<{ kid: string; privateKey: import('node:crypto').KeyObject }>;
      }
    ).signingKey();
    const body = JSON.stringify({
      id: 'evt_01TEST',
      type: 'key.rotated',
      created_at: new Date().toISOString(),
      data: { action: 'key.rotated' },
    });
    const t = Math.floor(Date.now() / 1000);
    const sig = sign(null, Buffer.from(`${t}.${body}`), key.privateKey).toString('base64url');
    const header = `t=${t},kid=${key.kid},sig=${sig}`;
    const jwksUrl = `${url}/.well-known/jwks.json`;
    expect(await verifyWebhook(body, header, { jwksUrl })).toMatchObject({
      id: 'evt_01TEST',
      type: 'key.rotated',
    });
    await expect(
      verifyWebhook(body.replace('rotated', 'created'), header, { jwksUrl }),
    ).rejects.toMatchObject({
      code: 'BAD_SIGNATURE',
    });
  });
});

/** A TCP proxy to 127.0.0.1:`port` whose connections the test can cut (and refuse for a while). */
async function startCuttableProxy(port: string) {
  const sockets = new Set<Socket>();
  const requests: string[] = [];
  let refusing = false;
  const server: Server = createTcpServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(Number(port), '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    client.on('data', (d: Buffer) => {
      const text = d.toString('latin1');
      if (/^(GET|POST) /.test(text)) requests.push(text);
    });
    client.pipe(upstream).pipe(client);
    const done = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', done).on('close', done);
    upstream.on('error', done).on('close', done);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    requests,
    // a dropped network, not a polite close: RST, so neither side waits on a half-open socket
    cut() {
      refusing = true;
      for (const s of sockets) s.resetAndDestroy();
    },
    restore() {
      refusing = false;
    },
    async close() {
      for (const s of sockets) s.resetAndDestroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
