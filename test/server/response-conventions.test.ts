import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEngines } from '../helpers/engines.js';
import type { TestServer } from '../helpers/server.js';

/**
 * API.md "Conventions": every response carries `x-request-id` and every error has the documented
 * shape, also for requests Node's HTTP server would otherwise answer on its own (an HTTP/1.1
 * request without Host, an `Expect` it does not know). And an answer that holds a key's plaintext
 * (create, rotate) is never kept by a cache, like the other answers that hold a secret.
 */

const eng = testEngines();
afterAll(() => eng.stop());

/** Sends `request` as raw bytes and returns everything the server wrote until it went quiet. */
function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let out = '';
    let quiet: NodeJS.Timeout | undefined;
    const done = () => {
      socket.destroy();
      resolve(out);
    };
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      out += chunk;
      clearTimeout(quiet);
      quiet = setTimeout(done, 150);
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(out));
    socket.write(request);
  });
}

/** The last response of a raw exchange (after any `100 Continue`): status, headers, JSON body. */
function lastResponse(raw: string): { status: number; headers: Map<string, string>; body: unknown } {
  const start = raw.lastIndexOf('HTTP/1.1 ');
  const [head = '', body = ''] = raw.slice(start).split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = new Map(
    lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
  );
  return { status: Number(statusLine.split(' ')[1]), headers, body: body ? JSON.parse(body) : undefined };
}

for (const e of eng.list) {
  describe.skipIf(e.skip)(`response conventions (${e.name})`, () => {
    let s: TestServer;
    let port: number;
    beforeAll(async () => {
      s = await e.startServer();
      const url = await s.app.listen({ host: '127.0.0.1', port: 0 });
      port = Number(new URL(url).port);
    });
    afterAll(() => s?.close());

    it('answers create and rotate, which hold the plaintext, with cache-control: no-store', async () => {
      const { apiKey } = await s.seedKey({ email: `no-store-${e.name}@example.com` });
      const created = await s.app.inject({
        method: 'POST',
        url: '/v1/api-keys',
        headers: { 'xi-api-key': apiKey },
        payload: { name: 'cached?' },
      });
      expect(created.statusCode).toBe(201);
      expect(created.json().api_key).toMatch(/^brz_/);
      expect(created.headers['cache-control']).toBe('no-store');

      const rotated = await s.app.inject({
        method: 'POST',
        url: `/v1/api-keys/${created.json().key_id}/rotate`,
        headers: { 'xi-api-key': apiKey },
      });
      expect(rotated.statusCode).toBe(201);
      expect(rotated.json().api_key).toMatch(/^brz_/);
      expect(rotated.headers['cache-control']).toBe('no-store');
    });

    it('refuses an HTTP/1.1 request without Host with a 400 in the error shape, with x-request-id', async () => {
      const res = lastResponse(await rawExchange(port, 'GET /v1/me HTTP/1.1\r\nxi-api-key: x\r\n\r\n'));
      expect(res.status).toBe(400);
      const id = res.headers.get('x-request-id');
      expect(id).toMatch(/^req_/);
      expect(res.body).toMatchObject({
        error: { code: 'VALIDATION_FAILED', statusCode: 400, category: 'REQUEST', request_id: id },
      });
      // HTTP/1.0 has no Host requirement
      const old = lastResponse(await rawExchange(port, 'GET /healthz HTTP/1.0\r\n\r\n'));
      expect(old.status).toBe(200);
    });

    it('serves a request with an unknown Expect instead of a bare 417 without x-request-id', async () => {
      const res = lastResponse(
        await rawExchange(port, 'GET /healthz HTTP/1.1\r\nHost: breeze\r\nExpect: something-else\r\n\r\n'),
      );
      expect(res.status).toBe(200);
      expect(res.headers.get('x-request-id')).toMatch(/^req_/);
      expect(res.body).toEqual({ status: 'ok' });
    });

    it('answers a body over 64 KiB with 413 PAYLOAD_TOO_LARGE whatever its content type', async () => {
      const { apiKey } = await s.seedKey({ email: `big-${e.name}@example.com` });
      for (const type of [
        'application/json',
        'text/html',
        'application/octet-stream',
        'multipart/form-data',
      ]) {
        const res = await s.app.inject({
          method: 'POST',
          url: '/v1/api-keys',
          headers: { 'xi-api-key': apiKey, 'content-type': type },
          payload: 'x'.repeat(70_000),
        });
        expect(res.statusCode, type).toBe(413);
        expect(res.json().error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', statusCode: 413 });
      }
      // chunked (no content-length): counted as it is read, whatever the type
      for (const type of ['application/json', 'text/html']) {
        const raw = lastResponse(
          await rawExchange(
            port,
            `POST /v1/api-keys HTTP/1.1\r\nHost: breeze\r\nxi-api-key: ${apiKey}\r\ncontent-type: ${type}\r\n` +
              `transfer-encoding: chunked\r\nconnection: close\r\n\r\n${(70_000).toString(16)}\r\n${'x'.repeat(70_000)}\r\n0\r\n\r\n`,
          ),
        );
        expect(raw.status, `chunked ${type}`).toBe(413);
      }
      // exactly 64 KiB is still read (and here refused as the wrong type it is)
      const edge = await s.app.inject({
        method: 'POST',
        url: '/v1/api-keys',
        headers: { 'xi-api-key': apiKey, 'content-type': 'text/html' },
        payload: 'x'.repeat(64 * 1024),
      });
      expect(edge.statusCode).toBe(400);
    });

    it('refuses a compressed body (Content-Encoding) instead of reading it as plain, and takes identity', async () => {
      const { apiKey } = await s.seedKey({ email: `coding-${e.name}@example.com` });
      const post = (coding: string) =>
        s.app.inject({
          method: 'POST',
          url: '/v1/api-keys',
          headers: { 'xi-api-key': apiKey, 'content-type': 'application/json', 'content-encoding': coding },
          payload: JSON.stringify({ name: 'coded' }),
        });
      for (const coding of ['gzip', 'br', 'deflate']) {
        const res = await post(coding);
        expect(res.statusCode, coding).toBe(400);
        expect(res.json().error).toMatchObject({
          code: 'VALIDATION_FAILED',
          message: expect.stringContaining('Content-Encoding'),
        });
      }
      expect((await post('identity')).statusCode).toBe(201);
    });

    it('names the Bearer scheme on every 401 (WWW-Authenticate), and not on other errors', async () => {
      const missing = await s.app.inject({ method: 'GET', url: '/v1/me' });
      const wrong = await s.app.inject({
        method: 'GET',
        url: '/v1/me',
        headers: { 'xi-api-key': 'brz_nope' },
      });
      for (const res of [missing, wrong]) {
        expect(res.statusCode).toBe(401);
        expect(res.headers['www-authenticate']).toBe('Bearer realm="breeze"');
      }
      const notFound = await s.app.inject({ method: 'GET', url: '/v1/nothing-here' });
      expect(notFound.statusCode).toBe(404);
      expect(notFound.headers['www-authenticate']).toBeUndefined();
    });

    it("names the per-IP limits' headers RateLimit-* like the per-key limit's, not X-RateLimit-*", async () => {
      const res = await s.app.inject({
        method: 'POST',
        url: '/auth/code',
        payload: { email: `limits-${e.name}@example.com`, type: 'jwt' },
      });
      expect(res.statusCode).toBeLessThan(300);
      expect(res.headers['ratelimit-limit']).toBeDefined();
      expect(res.headers['ratelimit-remaining']).toBeDefined();
      expect(Object.keys(res.headers).filter((h) => h.startsWith('x-ratelimit'))).toEqual([]);
    });
  });
}
