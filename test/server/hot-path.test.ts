/**
 * The per-request path of GET /v1/me (issue 11): the auth hook only on routes that authenticate,
 * cached keys accepted without a store lookup (the cache keyed by a digest, never the key), request
 * ids still unique, and logs still free of secrets with the cheaper redaction.
 */
import { Writable } from 'node:stream';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newRequestId } from '../../src/core/ids.js';
import { censorSecrets, loggerOptions } from '../../src/server/logging.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
let now = new Date('2030-01-01T00:00:00Z');

beforeAll(async () => {
  s = await startTestServer({ clock: () => now, config: { keyCacheTtlMs: 60_000 } });
  await s.app.ready();
});
afterAll(() => s.close());

/** `METHOD path` -> the names of its onRequest hooks, from Fastify's own route listing */
function onRequestHooks(): Map<string, string> {
  const hooks = new Map<string, string>();
  let route = '';
  // the tree prints a route's path relative to its parent's (once `/` itself is a route, every
  // path is): rebuild full paths from the indentation
  const stack: { col: number; path: string }[] = [];
  for (const line of s.app.printRoutes({ includeHooks: true, commonPrefix: false }).split('\n')) {
    const r = /^(.*?[─ ])([^\s•│├└─]\S*) \(([A-Z, ]+)\)$/.exec(line);
    if (r) {
      const col = (r[1] ?? '').length;
      while (stack.length && (stack[stack.length - 1]?.col ?? 0) >= col) stack.pop();
      const path = `${stack[stack.length - 1]?.path ?? ''}${r[2]}`;
      stack.push({ col, path });
      route = `${r[3]} ${path}`;
    }
    const h = /\(onRequest\) (.*)$/.exec(line);
    if (h && route) hooks.set(route, h[1]!);
  }
  return hooks;
}

describe('auth hook', () => {
  it('is attached to routes that authenticate and to no other', () => {
    const hooks = onRequestHooks();
    expect(hooks.get('GET /v1/me')).toContain('breezeAuth');
    // listed apart since each has its own preValidation hook (empty query params, null fields)
    expect(hooks.get('GET /v1/api-keys')).toContain('breezeAuth');
    expect(hooks.get('POST /v1/api-keys')).toContain('breezeAuth');
    expect(hooks.get('GET /healthz')).toBeDefined();
    expect(hooks.get('GET /healthz')).not.toContain('breezeAuth');
    expect([...hooks.values()].filter((h) => h.includes('breezeAuth')).length).toBeGreaterThan(3);
  });

  it('a cached key is answered without a store lookup; the cache holds a digest, never the key', async () => {
    const { apiKey, keyId } = await s.seedKey();
    const findByHash = s.store.keys.findByHash.bind(s.store.keys);
    let lookups = 0;
    s.store.keys.findByHash = (h: string) => {
      lookups++;
      return findByHash(h);
    };
    try {
      const headers = [
        { 'xi-api-key': apiKey },
        { 'xi-api-key': ` ${apiKey} ` },
        { authorization: `Bearer ${apiKey}` },
      ];
      for (let i = 0; i < 30; i++) {
        const res = await s.app.inject({ method: 'GET', url: '/v1/me', headers: headers[i % 3] });
        expect(res.statusCode).toBe(200);
        expect(res.json().auth).toEqual({
          type: 'api_key',
          key_id: keyId,
          scopes: ['read', 'write', 'admin'],
        });
        expect(res.headers['x-breeze-api-key-id']).toBe(keyId);
      }
      expect(lookups).toBe(1);
      const cacheKeys = [
        ...(s.app.breeze.cache as unknown as { byHash: Map<string, unknown> }).byHash.keys(),
      ];
      expect(cacheKeys.length).toBeGreaterThan(0);
      for (const k of cacheKeys) expect(k.includes(apiKey.slice(4, 20))).toBe(false);

      // a cached key that expires is refused at once, from the cache
      await s.store.keys.update(keyId, { expires_at: new Date(now.getTime() + 1000).toISOString() });
      s.app.breeze.cache.clear();
      expect((await s.app.inject({ method: 'GET', url: '/v1/me', headers: headers[0] })).statusCode).toBe(
        200,
      );
      now = new Date(now.getTime() + 2000);
      const expired = await s.app.inject({ method: 'GET', url: '/v1/me', headers: headers[2] });
      expect(expired.statusCode).toBe(401);
      expect(expired.json().error.code).toBe('AUTH_REQUIRED');
    } finally {
      s.store.keys.findByHash = findByHash;
    }
  });
});

it("a cached key's /v1/me answer is its own caller's, the same bytes each time, sent as JSON", async () => {
  // the answer is serialised once per verified key and then sent as text: two keys of two users,
  // asked in turn, must each get their own answer, in the schema's key order, typed as JSON
  const a = await s.seedKey({ email: 'me-text-a@example.com', scopes: ['read'] });
  const b = await s.seedKey({ email: 'me-text-b@example.com', scopes: ['read', 'write'] });
  const first = new Map<string, string>();
  for (let i = 0; i < 8; i++) {
    const k = i % 2 === 0 ? a : b;
    const res = await s.app.inject({ method: 'GET', url: '/v1/me', headers: { 'xi-api-key': k.apiKey } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    const body = res.json();
    expect(body.user).toEqual({
      id: k.userId,
      email: k === a ? 'me-text-a@example.com' : 'me-text-b@example.com',
    });
    expect(body.auth).toEqual({
      type: 'api_key',
      key_id: k.keyId,
      scopes: k === a ? ['read'] : ['read', 'write'],
    });
    expect(Object.keys(body)).toEqual(['user', 'auth', 'org', 'project']);
    if (!first.has(k.keyId)) first.set(k.keyId, res.body);
    expect(res.body).toBe(first.get(k.keyId));
  }
  expect(first.get(a.keyId)).not.toBe(first.get(b.keyId));
});

it('request ids stay unique and shaped req_ + 16 base64url characters', async () => {
  const ids = new Set<string>();
  for (let i = 0; i < 20_000; i++) ids.add(newRequestId());
  expect(ids.size).toBe(20_000);
  for (const id of ids) expect(id).toMatch(/^req_[A-Za-z0-9_-]{16}$/);
  const a = await s.app.inject({ method: 'GET', url: '/healthz' });
  const b = await s.app.inject({ method: 'GET', url: '/healthz' });
  expect(a.headers['x-request-id']).not.toBe(b.headers['x-request-id']);
});

describe('log redaction', () => {
  const key = 'brz_SECRETSECRETSECRETSECRETSECRETSECRETSECRET00';
  function logged(fn: (log: FastifyBaseLogger) => void): string {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    // the logger `breeze serve` builds: Fastify's pino with our options
    const app = Fastify({ logger: { ...loggerOptions('debug'), stream: sink } });
    fn(app.log);
    return lines.join('');
  }

  it('censors secret fields one level down, in plain objects and errors alike, and headers', () => {
    const err = Object.assign(new Error('boom'), { token: key, code_verifier: key });
    const out = logged((log) => {
      log.info({ body: { api_key: key, name: 'n' }, other: { secret: key, password: key, code: key } }, 'x');
      log.error({ err }, 'failed');
      log.info({ headers: { 'xi-api-key': key, authorization: `Bearer ${key}`, cookie: key } }, 'h');
      log.info({ req: { id: 'r', method: 'GET', url: `/x?api_key=${key}`, headers: { 'xi-api-key': key } } });
    });
    expect(out).not.toContain(key.slice(4));
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0].body).toEqual({ api_key: '[redacted]', name: 'n' });
    expect(lines[1].err.type).toBe('Error');
    expect(lines[1].err.message).toBe('boom');
    expect(lines[1].err.token).toBe('[redacted]');
    expect(lines[3].req).toEqual({ id: 'r', method: 'GET', path: '/x' });
    // the caller's objects are not modified
    expect(err.token).toBe(key);
  });

  it('leaves objects without secrets as they are (no copy)', () => {
    const obj = { a: { b: 1 }, n: 2 };
    expect(censorSecrets(obj)).toBe(obj);
  });
});

it('breeze serve logs one line per request: its id, method, path without the query, status and time; never the key', async () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  const t = await startTestServer({ logger: { ...loggerOptions(), stream: sink } });
  try {
    const { apiKey } = await t.seedKey();
    const me = await t.app.inject({ url: `/v1/me?token=${apiKey}`, headers: { 'xi-api-key': apiKey } });
    // one character off (never the same one: a key ending in "x" made this request the good one)
    const wrong = `${apiKey.slice(0, -1)}${apiKey.endsWith('x') ? 'y' : 'x'}`;
    const bad = await t.app.inject({ url: '/v1/me', headers: { 'xi-api-key': wrong } });
    const requests = lines.map((l) => JSON.parse(l)).filter((l) => l.req);
    expect(requests).toEqual([
      expect.objectContaining({
        msg: 'request completed',
        reqId: me.headers['x-request-id'],
        req: { id: me.headers['x-request-id'], method: 'GET', path: '/v1/me' },
        res: { statusCode: 200 },
        responseTime: expect.any(Number),
      }),
      expect.objectContaining({ reqId: bad.headers['x-request-id'], res: { statusCode: 401 } }),
    ]);
    expect(lines.join('')).not.toContain(apiKey.slice(4, 20));
  } finally {
    await t.close();
  }
});
