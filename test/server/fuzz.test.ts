import { createHash } from 'node:crypto';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hiddenField, InjectBrowser, latestOutboxCode } from '../helpers/browser.js';
import { CONTROL_SAMPLES, testEngines } from '../helpers/engines.js';
import type { TestServer } from '../helpers/server.js';

/**
 * Tens of thousands of generated malformed requests at every route and page, on SQLite and on
 * PostgreSQL (which cannot store NUL bytes): the server must answer each with a status below 500
 * and, for errors, the documented error shape with the request id. Control characters (NUL, C0,
 * DEL, C1) and invisible ones go into every position: path, query, JSON, form fields, headers.
 * Valid bodies with one poisoned field get past the schema's other checks to the field rule itself.
 * FUZZ_RUNS sets the number of requests per engine (default 20,000), FUZZ_SEED the seed.
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 20_000);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const eng = testEngines();
afterAll(() => eng.stop());

/** Every route the server has, from its own OpenAPI document (so new routes get fuzzed too). */
async function routes(s: TestServer): Promise<Array<{ method: string; path: string }>> {
  const doc = (await s.app.inject({ method: 'GET', url: '/openapi.json' })).json();
  const out: Array<{ method: string; path: string }> = [];
  for (const [path, ops] of Object.entries(doc.paths as Record<string, object>)) {
    for (const method of Object.keys(ops)) out.push({ method: method.toUpperCase(), path });
  }
  const pages = ['GET /login', 'POST /login', 'POST /login/code', 'POST /logout', 'GET /device'];
  for (const p of [...pages, 'POST /device/approve', 'POST /device/deny']) {
    const [method = 'GET', path = '/'] = p.split(' ');
    out.push({ method, path });
  }
  return out;
}

/** NUL, C0 (TAB, CR, LF, ESC), DEL, C1, and invisible characters the email rule also refuses. */
const CONTROLS = [...CONTROL_SAMPLES, '\u200b', '\ufeff', '\u2028'];
const controlString = fc
  .array(fc.oneof(fc.constantFrom(...CONTROLS), fc.constantFrom('a', 'Z', '0', ' ', '-', '@', '.', 'é')), {
    minLength: 1,
    maxLength: 12,
  })
  .map((a) => a.join(''));
/** `value` with a control character inserted at a random position. */
const poison = (value: string) =>
  fc
    .tuple(fc.nat({ max: value.length }), fc.constantFrom(...CONTROLS))
    .map(([at, c]) => value.slice(0, at) + c + value.slice(at));

const jsonValue = fc.jsonValue({ maxDepth: 3 });
const weirdString = fc.oneof(
  controlString,
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    '../../etc/passwd',
    '%00',
    '%ZZ',
    "' OR 1=1 --",
    '__proto__',
    'constructor',
  ),
);

const challenge = createHash('sha256').update('v'.repeat(43)).digest('base64url');
/** Bodies every check of a route accepts, but for one field holding a control character. */
const poisonedBody = fc.oneof(
  fc.record({ name: poison('laptop key'), scopes: fc.constant(['read']) }),
  fc.constantFrom('client_name', 'hostname', 'key_name', 'state', 'redirect_uri').chain((field) => {
    const base: Record<string, unknown> = {
      code_challenge: challenge,
      code_challenge_method: 'S256',
      client_name: 'breeze/1.0.0',
      hostname: 'laptop',
      key_name: 'ci key',
      state: 'abc',
      redirect_uri: 'http://127.0.0.1:4000/callback',
    };
    return poison(String(base[field])).map((v) => ({ ...base, [field]: v }));
  }),
  fc.record({ email: poison('someone@example.com'), type: fc.constant('api_key') }),
  fc.record({ code_verifier: poison('v'.repeat(43)), code: poison('abc') }),
  fc.record({ code: poison('ABCD2345') }),
);

const bodyArb = fc.oneof(
  poisonedBody.map((v) => ({ type: 'application/json', payload: JSON.stringify(v) })),
  fc
    .record(
      {
        email: fc.oneof(weirdString, poison('fuzz@example.com')),
        csrf: fc.constantFrom('@CSRF', '@SESSIONCSRF', ''),
        next: fc.oneof(weirdString, fc.constant('/device')),
        code: weirdString,
        code_id: fc.oneof(weirdString, fc.constant('code_abc')),
        user_code: fc.oneof(weirdString, fc.constant('@USERCODE')),
      },
      { requiredKeys: [] },
    )
    .map((v) => ({ type: 'application/x-www-form-urlencoded', payload: new URLSearchParams(v).toString() })),
  jsonValue.map((v) => ({ type: 'application/json', payload: JSON.stringify(v) })),
  fc
    .record(
      {
        name: fc.oneof(weirdString, fc.integer(), fc.constant(null)),
        client_name: weirdString,
        hostname: weirdString,
        key_name: weirdString,
        state: weirdString,
        scopes: fc.oneof(
          fc.array(weirdString, { maxLength: 4 }),
          weirdString,
          fc.constant(['read', 'admin']),
        ),
        expires_in_s: fc.oneof(fc.integer(), fc.double(), weirdString),
        expires_at: fc.oneof(
          weirdString,
          fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
        ),
        grace_period_s: fc.oneof(fc.integer(), fc.double(), weirdString, fc.constant(null)),
        email: weirdString,
        type: fc.constantFrom('api_key', 'jwt', 'other'),
        code: weirdString,
        code_verifier: weirdString,
        code_challenge: weirdString,
        code_challenge_method: fc.constantFrom('S256', 'plain', ''),
        redirect_uri: fc.constantFrom(
          'http://127.0.0.1:1/cb',
          'https://evil.example/cb',
          'javascript:alert(1)',
          '',
        ),
      },
      { requiredKeys: [] },
    )
    .map((v) => ({ type: 'application/json', payload: JSON.stringify(v) })),
  fc.string({ maxLength: 60 }).map((v) => ({ type: 'application/json', payload: v })),
  fc.uint8Array({ maxLength: 80 }).map((v) => ({ type: 'application/json', payload: Buffer.from(v) })),
  fc.string({ maxLength: 60 }).map((v) => ({ type: 'text/plain', payload: v })),
  fc.string({ maxLength: 60 }).map((v) => ({ type: 'application/x-www-form-urlencoded', payload: v })),
  fc
    .uint8Array({ maxLength: 40 })
    .map((v) => ({ type: 'application/octet-stream', payload: Buffer.from(v) })),
  fc.constant({ type: 'application/json', payload: '{"__proto__":{"x":1},"name":"p"}' }),
  fc.constant({ type: 'application/json', payload: `{"name":"${'a'.repeat(70 * 1024)}"}` }),
  fc.constant(undefined),
);

const authArb = fc.oneof(
  fc.constant({}),
  fc.constant({ 'xi-api-key': '@GOOD' }),
  fc.constant({ authorization: 'Bearer @GOOD' }),
  weirdString.map((v) => ({ 'xi-api-key': v })),
  weirdString.map((v) => ({ authorization: `Bearer ${v}` })),
  weirdString.map((v) => ({ authorization: v })),
  weirdString.map((v) => ({ cookie: v })),
  fc.constant({ cookie: 'breeze_session=abc; breeze_csrf=def' }),
  fc.constant({ cookie: '@FORMCOOKIE' }),
  fc.constant({ cookie: '@SESSIONCOOKIE' }),
  fc.constant({ 'xi-api-key': '@GOOD', cookie: '@SESSIONCOOKIE' }),
);

/** Headers that may reach a handler or the database in some future: each may carry controls. */
const extraHeadersArb = fc.record(
  {
    'user-agent': weirdString,
    origin: fc.oneof(weirdString, fc.constant('http://127.0.0.1')),
    'sec-fetch-site': fc.oneof(weirdString, fc.constant('same-origin')),
    'x-forwarded-for': weirdString,
    accept: weirdString,
  },
  { requiredKeys: [] },
);

const paramArb = fc.oneof(
  fc.constant('@SELF'),
  fc.constant('@OTHER'),
  weirdString.map((v) => encodeURIComponent(v)),
  fc.constantFrom('%', '%E0%A4%A', 'key_', '..', 'a'.repeat(300)),
);

const queryArb = fc.oneof(
  fc.constant(''),
  fc
    .record(
      {
        limit: fc.oneof(fc.integer({ min: -5, max: 500 }).map(String), weirdString),
        cursor: weirdString,
        status: weirdString,
        user_code: fc.oneof(weirdString, fc.constant('@USERCODE')),
        next: weirdString,
        code: weirdString,
        state: weirdString,
      },
      { requiredKeys: [] },
    )
    .map((q) => `?${new URLSearchParams(q as Record<string, string>).toString()}`),
  fc.constantFrom('?%', '?limit=1&limit=2', '?a[b]=c', '?%E0%A4%A'),
);

for (const engine of eng.list) {
  describe.skipIf(engine.skip)(`fuzz on ${engine.name}`, () => {
    let s: TestServer;
    let goodKey = '';
    let keyId = '';
    let otherKeyId = '';
    /** stand-ins the generators use, replaced by real values of this server */
    const real: Record<string, string> = {};

    beforeAll(async () => {
      s = await engine.startServer({ config: { rateLimitPerKey: 0 } });
      const seeded = await s.seedKey({ email: 'fuzz@example.com' });
      goodKey = seeded.apiKey;
      keyId = seeded.keyId;
      otherKeyId = (await s.seedKey({ email: 'fuzz@example.com', name: 'other' })).keyId;
      const b = new InjectBrowser(s.app);
      await b.signIn('fuzz@example.com', () =>
        latestOutboxCode(join(s.dataDir, 'outbox'), 'fuzz@example.com'),
      );
      real['@SESSIONCOOKIE'] = b.cookieHeader();
      real['@SESSIONCSRF'] = hiddenField((await b.get('/device')).body, 'csrf');
      const anon = new InjectBrowser(s.app);
      real['@CSRF'] = hiddenField((await anon.get('/login')).body, 'csrf');
      real['@FORMCOOKIE'] = anon.cookieHeader();
      const login = await s.app.inject({
        method: 'POST',
        url: '/v1/cli/logins',
        payload: {
          code_challenge: challenge,
          code_challenge_method: 'S256',
          client_name: 'c',
          hostname: 'h',
        },
      });
      real['@USERCODE'] = login.json().user_code;
      real['@GOOD'] = goodKey;
    }, 60_000);
    afterAll(() => s?.close());

    const fill = (v: string) => v.replace(/@[A-Z]+/g, (m) => real[m] ?? m);

    it(`answers ${RUNS} malformed requests without a 5xx, always in the error shape`, async () => {
      const all = await routes(s);
      expect(all.length).toBeGreaterThan(5);
      const methods = fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'PUT', 'OPTIONS', 'HEAD');
      const ipArb = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255)).map(([a, b, c]) => `10.${a}.${b}.${c}`);
      let tried = 0;
      const statuses = new Map<number, number>();
      const started = Date.now();
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...all),
          fc.option(methods, { nil: undefined }),
          paramArb,
          queryArb,
          authArb,
          extraHeadersArb,
          bodyArb,
          ipArb,
          async (route, otherMethod, param, query, auth, extra, body, ip) => {
            tried++;
            const p = param === '@SELF' ? keyId : param === '@OTHER' ? otherKeyId : param;
            const url = route.path.replace(/\{[^}]+\}/g, p) + fill(query);
            const headers: Record<string, string> = { ...extra };
            for (const [k, v] of Object.entries(auth)) headers[k] = fill(v);
            if (body) headers['content-type'] = body.type;
            const payload = body && typeof body.payload === 'string' ? fill(body.payload) : body?.payload;
            const res = await s.app.inject({
              method: (otherMethod ?? route.method) as 'GET',
              url,
              headers,
              remoteAddress: ip,
              ...(body ? { payload } : {}),
            });
            statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
            expect(res.statusCode, `${route.method} ${url} -> ${res.body.slice(0, 300)}`).toBeLessThan(500);
            expect(res.headers['x-request-id']).toMatch(/^req_/);
            const isJsonError = res.statusCode >= 400 && String(res.headers['content-type']).includes('json');
            if (isJsonError && res.body) {
              const e = res.json().error;
              expect(e).toMatchObject({
                statusCode: res.statusCode,
                request_id: res.headers['x-request-id'],
              });
              expect(typeof e.code).toBe('string');
              expect(typeof e.message).toBe('string');
              expect(e.message).not.toContain(goodKey);
            }
          },
        ),
        { numRuns: RUNS, seed: SEED },
      );
      const byStatus = [...statuses.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([k, n]) => `${k}:${n}`)
        .join(' ');
      console.log(
        `[fuzz ${engine.name}] ${tried} requests (seed ${SEED}) in ${Date.now() - started} ms, 5xx: 0; statuses ${byStatus}`,
      );
      expect(tried).toBeGreaterThanOrEqual(RUNS);
      // the fuzz reached the handlers, not only the validation: some requests succeeded
      expect([200, 201].some((c) => statuses.has(c))).toBe(true);
      // the server still works afterwards
      const me = await s.app.inject({ method: 'GET', url: '/v1/me', headers: { 'xi-api-key': goodKey } });
      if (me.statusCode === 401) {
        // the fuzzer may have rotated with grace 0 or deleted the seeded key: both are legitimate outcomes
        expect(me.json().error.code).toBe('AUTH_REQUIRED');
      } else {
        expect(me.statusCode).toBe(200);
      }
    }, 600_000);
  });
}
