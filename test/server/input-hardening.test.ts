import { createHash, randomBytes } from 'node:crypto';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InjectBrowser } from '../helpers/browser.js';
import { CONTROL_SAMPLES, testEngines } from '../helpers/engines.js';
import type { TestServer } from '../helpers/server.js';

/**
 * API.md "Conventions", black-box over HTTP on both engines: text fields refuse control characters
 * (U+0000–U+001F, U+007F, U+0080–U+009F) with `400 VALIDATION_FAILED`, ids that cannot exist are
 * `404`, and the `/login` form accepts exactly the emails the API's `format: email` accepts.
 * PostgreSQL cannot store U+0000: before the fix it answered 500 to each of these.
 */
const eng = testEngines();
afterAll(() => eng.stop());

const CONTROLS = CONTROL_SAMPLES;
const show = (c: string) => `U+${c.codePointAt(0)?.toString(16).padStart(4, '0')}`;

function pkceChallenge(): string {
  return createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
}

const loginBody = (extra: Record<string, unknown> = {}) => ({
  code_challenge: pkceChallenge(),
  code_challenge_method: 'S256',
  client_name: 'breeze/1.0.0',
  hostname: 'laptop',
  ...extra,
});

for (const engine of eng.list) {
  describe.skipIf(engine.skip)(`input hardening on ${engine.name}`, () => {
    let s: TestServer;
    let adminKey = '';
    let keyId = '';

    beforeAll(async () => {
      s = await engine.startServer({ config: { rateLimitPerKey: 0 } });
      const seeded = await s.seedKey({ email: `hardening-${engine.name}@example.com` });
      adminKey = seeded.apiKey;
      keyId = seeded.keyId;
    }, 60_000);
    afterAll(() => s?.close());

    const api = (o: InjectOptions) =>
      s.app.inject({ ...o, headers: { 'xi-api-key': adminKey, ...(o.headers as object) } });

    function expectError(
      res: { statusCode: number; json(): { error: { code: string } } },
      status: number,
      code: string,
    ) {
      expect(res.statusCode).toBe(status);
      expect(res.json().error.code).toBe(code);
    }

    it('answers 404 to key ids that cannot exist (NUL and other controls in the path)', async () => {
      const ids = [
        '%00',
        `${keyId}%00`,
        '%00key',
        '%0A',
        '%1B%5B2J',
        '%7F',
        '%C2%85',
        'key%20x',
        '%E2%80%8B',
      ];
      for (const id of ids) {
        for (const [method, suffix] of [
          ['GET', ''],
          ['PATCH', ''],
          ['DELETE', ''],
          ['POST', '/rotate'],
          ['POST', '/disable'],
          ['POST', '/enable'],
        ] as const) {
          const res = await api({
            method,
            url: `/v1/api-keys/${id}${suffix}`,
            ...(method === 'PATCH' ? { payload: { name: 'x' } } : {}),
          });
          expect(res.statusCode, `${method} /v1/api-keys/${id}${suffix}: ${res.body}`).toBe(404);
          expect(res.json().error.code).toBe('NOT_FOUND');
        }
      }
      // the real key is untouched and still answers
      expect((await api({ method: 'GET', url: `/v1/api-keys/${keyId}` })).statusCode).toBe(200);
    });

    it('answers 404, after authentication, to ids longer than the router default of 100 characters', async () => {
      for (const n of [101, 128, 129, 5000]) {
        const id = `key_${'a'.repeat(n)}`;
        const res = await api({ method: 'GET', url: `/v1/api-keys/${id}` });
        expect(res.statusCode, `${n}: ${res.body}`).toBe(404);
        expect(res.json().error.code).toBe('NOT_FOUND');
        // the path is not echoed back
        expect(res.body).not.toContain('a'.repeat(50));
        const anon = await s.app.inject({ method: 'GET', url: `/v1/api-keys/${id}` });
        expectError(anon, 401, 'AUTH_REQUIRED');
      }
      // a login id of 101..128 characters could exist: unknown, it is the exchange's INVALID_GRANT
      const exchange = (id: string) =>
        s.app.inject({
          method: 'POST',
          url: `/v1/cli/logins/${id}/exchange`,
          payload: { code_verifier: 'a'.repeat(43) },
        });
      expectError(await exchange(`login_${'a'.repeat(110)}`), 400, 'INVALID_GRANT');
      // and so is one that cannot exist: every answer of the exchange is a 400 (API.md)
      expectError(await exchange(`login_${'a'.repeat(5000)}`), 400, 'INVALID_GRANT');
    });

    it('refuses a broken percent-encoding with 400 without repeating the path', async () => {
      const res = await api({ method: 'GET', url: '/v1/api-keys/brz_secretish%E0%A4%A' });
      expectError(res, 400, 'VALIDATION_FAILED');
      expect(res.body).not.toContain('brz_secretish');
    });

    it('refuses lone UTF-16 surrogates in text fields (no engine can store them as sent)', async () => {
      for (const raw of ['a\\ud800b', '\\udfff', 'x\\ud83d']) {
        const created = await api({
          method: 'POST',
          url: '/v1/api-keys',
          headers: { 'content-type': 'application/json' },
          payload: `{"name":"${raw}"}`,
        });
        expect(created.statusCode, `create ${raw}: ${created.body}`).toBe(400);
        expect(created.json().error.code).toBe('VALIDATION_FAILED');
        const patched = await api({
          method: 'PATCH',
          url: `/v1/api-keys/${keyId}`,
          headers: { 'content-type': 'application/json' },
          payload: `{"name":"${raw}"}`,
        });
        expectError(patched, 400, 'VALIDATION_FAILED');
        const login = await s.app.inject({
          method: 'POST',
          url: '/v1/cli/logins',
          headers: { 'content-type': 'application/json' },
          payload: JSON.stringify(loginBody()).replace('"laptop"', `"${raw}"`),
        });
        expectError(login, 400, 'VALIDATION_FAILED');
      }
      // a valid pair written as escapes is one character and stays accepted, and reads back the same
      const pair = await api({
        method: 'POST',
        url: '/v1/api-keys',
        headers: { 'content-type': 'application/json' },
        payload: '{"name":"ok \\ud83d\\ude00"}',
      });
      expect(pair.statusCode).toBe(201);
      const read = await api({ method: 'GET', url: `/v1/api-keys/${pair.json().key_id}` });
      expect(read.json().name).toBe('ok 😀');
      await api({ method: 'DELETE', url: `/v1/api-keys/${pair.json().key_id}` });
    });

    it('takes a body-less POST or DELETE sent with a JSON (or text) content type as having no body', async () => {
      const created = await api({ method: 'POST', url: '/v1/api-keys', payload: { name: 'empty-body' } });
      const id = created.json().key_id;
      for (const type of ['application/json', 'application/json; charset=utf-8', 'text/plain']) {
        const headers = { 'content-type': type };
        const disabled = await api({ method: 'POST', url: `/v1/api-keys/${id}/disable`, headers });
        expect(disabled.statusCode, `${type}: ${disabled.body}`).toBe(200);
        expect(disabled.json().status).toBe('disabled');
        const enabled = await api({ method: 'POST', url: `/v1/api-keys/${id}/enable`, headers });
        expect(enabled.statusCode, `${type}: ${enabled.body}`).toBe(200);
        expect(enabled.json().status).toBe('active');
        // a route that needs a body still refuses the missing one in the documented shape
        const create = await api({ method: 'POST', url: '/v1/api-keys', headers });
        expectError(create, 400, 'VALIDATION_FAILED');
        const patch = await api({ method: 'PATCH', url: `/v1/api-keys/${id}`, headers });
        expectError(patch, 400, 'VALIDATION_FAILED');
      }
      const rotated = await api({
        method: 'POST',
        url: `/v1/api-keys/${id}/rotate`,
        headers: { 'content-type': 'application/json' },
      });
      expect(rotated.statusCode, rotated.body).toBe(201);
      // the default grace of 3600 s applies
      const previous = rotated.json().previous;
      expect(Date.parse(previous.expires_at)).toBeGreaterThan(Date.now() + 3500_000);
      for (const key of [id, rotated.json().key_id]) {
        const del = await api({
          method: 'DELETE',
          url: `/v1/api-keys/${key}`,
          headers: { 'content-type': 'application/json' },
        });
        expect(del.statusCode, del.body).toBe(204);
      }
      // whitespace is not an empty body: still malformed JSON
      const blank = await api({
        method: 'POST',
        url: '/v1/api-keys',
        headers: { 'content-type': 'application/json' },
        payload: '  ',
      });
      expectError(blank, 400, 'VALIDATION_FAILED');
    });

    it('refuses a JSON body that is not UTF-8 as malformed, and keeps accepting UTF-8 with a BOM', async () => {
      const bad = [
        Buffer.concat([Buffer.from('{"name":"a'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]),
        Buffer.from('{"name":"caf\xe9"}', 'latin1'),
        Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]),
      ];
      for (const payload of bad) {
        const res = await api({
          method: 'POST',
          url: '/v1/api-keys',
          headers: { 'content-type': 'application/json' },
          payload,
        });
        expectError(res, 400, 'VALIDATION_FAILED');
      }
      const bom = await api({
        method: 'POST',
        url: '/v1/api-keys',
        headers: { 'content-type': 'application/json; charset=utf-8' },
        payload: Buffer.from('\ufeff{"name":"café"}', 'utf8'),
      });
      expect(bom.statusCode, bom.body).toBe(201);
      expect(bom.json().name).toBe('café');
      await api({ method: 'DELETE', url: `/v1/api-keys/${bom.json().key_id}` });
    });

    it('ignores __proto__ and constructor fields like any unknown field', async () => {
      const created = await api({
        method: 'POST',
        url: '/v1/api-keys',
        headers: { 'content-type': 'application/json' },
        payload: '{"name":"proto","__proto__":{"scopes":["admin"]},"constructor":{"prototype":{"x":1}}}',
      });
      expect(created.statusCode, created.body).toBe(201);
      expect(created.json().scopes).toEqual(['read']);
      expect(({} as Record<string, unknown>).scopes).toBeUndefined();
      await api({ method: 'DELETE', url: `/v1/api-keys/${created.json().key_id}` });
    });

    it("answers login ids that cannot exist with the exchange's INVALID_GRANT, and code ids with 404", async () => {
      for (const id of ['%00', 'login_%00', '%0D%0A', '%C2%9F']) {
        const ex = await s.app.inject({
          method: 'POST',
          url: `/v1/cli/logins/${id}/exchange`,
          payload: { code_verifier: 'a'.repeat(43) },
        });
        expectError(ex, 400, 'INVALID_GRANT');
        const ver = await s.app.inject({
          method: 'POST',
          url: `/auth/code/${id}/verifications`,
          payload: { code: 'ABCDEFGH' },
        });
        expectError(ver, 404, 'NOT_FOUND');
      }
    });

    it('refuses every control character in key names, on create and on patch', async () => {
      for (const c of CONTROLS) {
        for (const name of [`a${c}b`, `${c}name`, `name${c}`]) {
          const created = await api({ method: 'POST', url: '/v1/api-keys', payload: { name } });
          expect(created.statusCode, `create with ${show(c)}: ${created.body}`).toBe(400);
          expect(created.json().error.code).toBe('VALIDATION_FAILED');
          const patched = await api({ method: 'PATCH', url: `/v1/api-keys/${keyId}`, payload: { name } });
          expect(patched.statusCode, `patch with ${show(c)}: ${patched.body}`).toBe(400);
          expect(patched.json().error.code).toBe('VALIDATION_FAILED');
        }
      }
      const list = await api({ method: 'GET', url: '/v1/api-keys?limit=200' });
      expect(list.json().data.map((k: { name: string }) => k.name)).toEqual(['seed']);
    });

    it('still accepts names with spaces, accents, emoji and zero-width joiners', async () => {
      const name = 'laptop – café 😀 👩‍💻';
      const created = await api({ method: 'POST', url: '/v1/api-keys', payload: { name } });
      expect(created.statusCode).toBe(201);
      expect(created.json().name).toBe(name);
      const id = created.json().key_id;
      const patched = await api({
        method: 'PATCH',
        url: `/v1/api-keys/${id}`,
        payload: { name: 'Ünïcödé ok' },
      });
      expect(patched.json().name).toBe('Ünïcödé ok');
      // blank names stay refused
      expect((await api({ method: 'POST', url: '/v1/api-keys', payload: { name: '   ' } })).statusCode).toBe(
        400,
      );
    });

    it('refuses control characters in every text field of POST /v1/cli/logins (unauthenticated)', async () => {
      for (const field of ['client_name', 'hostname', 'key_name', 'state', 'redirect_uri']) {
        for (const c of CONTROLS) {
          const value = field === 'redirect_uri' ? `http://127.0.0.1:5000/cb${c}` : `x${c}y`;
          const res = await s.app.inject({
            method: 'POST',
            url: '/v1/cli/logins',
            remoteAddress: `10.0.${CONTROLS.indexOf(c)}.1`,
            payload: loginBody({ [field]: value }),
          });
          expect(res.statusCode, `${field} with ${show(c)}: ${res.body}`).toBe(400);
          expect(res.json().error.code).toBe('VALIDATION_FAILED');
          expect(JSON.stringify(res.json().error.details)).toContain(field);
        }
      }
      const ok = await s.app.inject({
        method: 'POST',
        url: '/v1/cli/logins',
        payload: loginBody({ key_name: 'CI – runner 😀', state: '' }),
      });
      expect(ok.statusCode).toBe(201);
    });

    it('/login refuses exactly the emails POST /auth/code refuses (controls, zero-width, NUL)', async () => {
      const emails = [
        'ok@example.com',
        'a\u0000@example.com',
        'a@example.com\u0000',
        'a\u200b@example.com',
        'a@exa\u200dmple.com',
        '\ufeffa@example.com',
        'a\u0085@example.com',
        'a\u007f@example.com',
        'a b@example.com',
        'a@b',
      ];
      let n = 0;
      for (const email of emails) {
        n += 1;
        const api = await s.app.inject({
          method: 'POST',
          url: '/auth/code',
          remoteAddress: `10.1.0.${n}`,
          payload: { email, type: 'api_key' },
        });
        expect(api.statusCode, `POST /auth/code ${JSON.stringify(email)}: ${api.body}`).toBeLessThan(500);
        const b = new InjectBrowser(s.app);
        const page = await b.get('/login');
        const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)?.[1];
        const form = await b.post('/login', { email, csrf, next: '/device' });
        expect(form.statusCode, `/login ${JSON.stringify(email)}`).toBeLessThan(500);
        const apiAccepts = api.statusCode === 201;
        const formAccepts = form.statusCode === 200;
        expect({ email, formAccepts }).toEqual({ email, formAccepts: apiAccepts });
        if (!formAccepts) {
          expect(form.statusCode).toBe(400);
          expect(form.body).toContain('Enter a valid email address.');
        }
      }
    });
  });
}
