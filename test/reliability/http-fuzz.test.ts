import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailability, startPostgres, type TestPostgres, uniqueDbName } from '../helpers/postgres.js';
import { requirePart } from '../helpers/require.js';
import {
  browserSignIn,
  cookiePairs,
  inputValue,
  loopbackAliases,
  type RawResponse,
  rawRequest,
  sendRaw,
} from './raw-http.js';
import { call, distReady, type ServerProcess, spawnFixtureServer } from './server-process.js';

/**
 * Bad input over real HTTP, against a server in its own process: raw sockets send what `inject`
 * cannot (invalid UTF-8 in the request line and headers, broken chunked framing, lying or missing
 * Content-Length, truncated and oversized bodies, huge headers) to every JSON route and every page,
 * with and without real credentials (API key, session cookie, CSRF tokens). Nothing may answer 5xx;
 * JSON errors have the documented shape with `request_id` = `x-request-id`; page errors are HTML
 * pages with the strict CSP. Each request comes from its own loopback address (127.x.y.z), so the
 * per-IP limits of the pages do not turn the fuzz into a test of the limiter.
 * It runs on SQLite and on PostgreSQL (which refuses NUL bytes): control characters go into the
 * path, query, JSON and form fields, and valid bodies carry one poisoned field.
 * BREEZE_FUZZ_RUNS sets the number of generated requests per engine (default 1500), BREEZE_FUZZ_SEED the seed.
 */
const skip = requirePart('dist build', distReady, 'dist/server/serve.js is missing (the build failed?)');
const pgAvail = postgresAvailability();
const skipPostgres = requirePart('PostgreSQL', pgAvail.available, pgAvail.why);
let pg: TestPostgres | undefined;
afterAll(async () => {
  await pg?.stop();
});
const ENGINES = [
  { name: 'sqlite', skip: false, databaseUrl: async (): Promise<string | undefined> => undefined },
  {
    name: 'postgres',
    skip: skipPostgres,
    databaseUrl: async (): Promise<string | undefined> => {
      pg ??= await startPostgres();
      return pg.createDatabase(uniqueDbName('httpfuzz'));
    },
  },
];
const RUN_ON = ENGINES.filter((e) => !e.skip);
const CONTROLS = ['\u0000', '\u0001', '\t', '\n', '\r', '\u001b', '\u007f', '\u0085', '\u009f', '\u200b'];
const controlString = fc
  .array(fc.oneof(fc.constantFrom(...CONTROLS), fc.constantFrom('a', '0', ' ', '@', '.')), {
    minLength: 1,
    maxLength: 10,
  })
  .map((a) => a.join(''));
const poison = (value: string) =>
  fc
    .tuple(fc.nat({ max: value.length }), fc.constantFrom(...CONTROLS))
    .map(([at, c]) => value.slice(0, at) + c + value.slice(at));

const RUNS = Number(process.env.BREEZE_FUZZ_RUNS ?? 1500);
// A fixed default seed: whether a run reaches five kinds of handler answer depended on rare 204s and
// 413s (about one run in five missed both and failed with 0 5xx). BREEZE_FUZZ_SEED explores others.
const SEED = Number(process.env.BREEZE_FUZZ_SEED ?? 1);
const PAGE_PATHS = ['/login', '/login/code', '/logout', '/device', '/device/approve', '/device/deny'];

let addressCounter = 0;
/**
 * A fresh loopback source address per request: 127.1.0.1, 127.1.0.2, ... (where the system has no
 * 127/8 aliases, the default address: the page limits then answer some requests with 429).
 */
function nextAddress(): string | undefined {
  if (!loopbackAliases) return undefined;
  const n = ++addressCounter;
  return `127.1.${(n >> 8) & 255}.${n & 255 || 1}`;
}

const B = (s: string) => Buffer.from(s, 'latin1');

interface Verdict {
  fiveXx: number;
  /** answered without x-request-id (the HTTP parser's own answers used to be): must stay 0 */
  parserLevel: number;
  problems: string[];
}

function isPagePath(path: string): boolean {
  const p = path.split(/[?#]/)[0] ?? '';
  return PAGE_PATHS.includes(p);
}

/** Checks one response against the contract; returns a problem description or undefined. */
function judge(res: RawResponse, path: string): string | undefined {
  if (res.status >= 500) return `status ${res.status}: ${res.body.toString('utf8').slice(0, 200)}`;
  const rid = res.headers['x-request-id'];
  if (!rid) return `status ${res.status} without x-request-id: ${res.body.toString('utf8').slice(0, 120)}`;
  if (res.status < 400) return undefined;
  // HEAD answers carry headers only
  if (res.body.length === 0 && res.headers['content-length'] !== '0') return undefined;
  const type = res.headers['content-type'] ?? '';
  if (type.startsWith('application/json')) {
    let body: { error?: Record<string, unknown> };
    try {
      body = JSON.parse(res.body.toString('utf8'));
    } catch {
      return `status ${res.status}: JSON error body does not parse`;
    }
    const e = body.error;
    if (
      !e ||
      typeof e.code !== 'string' ||
      typeof e.message !== 'string' ||
      e.statusCode !== res.status ||
      typeof e.category !== 'string' ||
      e.request_id !== rid
    ) {
      return `status ${res.status}: error body not in the documented shape: ${res.body.toString('utf8').slice(0, 200)}`;
    }
    return undefined;
  }
  if (type.startsWith('text/html')) {
    if (!isPagePath(path)) return `status ${res.status}: HTML error on JSON route ${path}`;
    if (!res.headers['content-security-policy']?.includes("default-src 'none'")) {
      return `status ${res.status}: page error without the strict CSP`;
    }
    return undefined;
  }
  return `status ${res.status}: error with content-type "${type}"`;
}

describe.skipIf(skip).each(RUN_ON)('bad input over real HTTP (raw sockets) on $name', (engine) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'breeze-httpfuzz-'));
  let server: ServerProcess;
  let origin = '';
  let adminKey = '';
  let keyId = '';
  let session = '';
  let sessionCsrf = '';
  let formCookie = '';
  let formCsrf = '';
  let userCode = '';
  let loginId = '';
  let routes: Array<{ method: string; path: string }> = [];

  beforeAll(async () => {
    server = await spawnFixtureServer(dataDir, {
      seedEmail: 'fuzz@example.com',
      databaseUrl: await engine.databaseUrl(),
    });
    origin = server.url;
    adminKey = server.seedKey!;
    const created = await call(`${origin}/v1/api-keys`, {
      method: 'POST',
      headers: { 'xi-api-key': adminKey, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'fuzz target' }),
    });
    keyId = (created.body as { key_id: string }).key_id;
    session = await browserSignIn(origin, dataDir, 'fuzz@example.com', nextAddress());
    const devicePage = await rawRequest(origin, {
      path: '/device',
      headers: { cookie: `breeze_session=${session}` },
      localAddress: nextAddress(),
    });
    sessionCsrf = inputValue(devicePage.body.toString('utf8'), 'csrf') ?? '';
    const loginPage = await rawRequest(origin, { path: '/login', localAddress: nextAddress() });
    formCookie = cookiePairs(loginPage).breeze_form ?? '';
    formCsrf = inputValue(loginPage.body.toString('utf8'), 'csrf') ?? '';
    const verifier = randomBytes(32).toString('base64url');
    const login = await call(`${origin}/v1/cli/logins`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256',
        client_name: 'breeze/fuzz',
        hostname: 'fuzzhost',
      }),
    });
    userCode = (login.body as { user_code?: string }).user_code ?? '';
    loginId = (login.body as { login_id?: string }).login_id ?? '';
    const doc = (await call(`${origin}/openapi.json`)).body as { paths: Record<string, object> };
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) routes.push({ method: method.toUpperCase(), path });
    }
    routes = [
      ...routes,
      { method: 'GET', path: '/login' },
      { method: 'POST', path: '/login' },
      { method: 'POST', path: '/login/code' },
      { method: 'POST', path: '/logout' },
      { method: 'GET', path: '/device' },
      { method: 'POST', path: '/device/approve' },
      { method: 'POST', path: '/device/deny' },
    ];
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('has real credentials and targets to aim at', () => {
    expect(session).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(sessionCsrf.length).toBeGreaterThan(10);
    expect(formCookie.length).toBeGreaterThan(10);
    expect(userCode).toMatch(/^[A-Z]{4}-[A-Z]{4}$/);
    // every JSON route of the contract is fuzzed, from the server's own OpenAPI document
    const paths = routes.map((r) => `${r.method} ${r.path}`);
    for (const p of [
      'GET /v1/me',
      'POST /v1/api-keys',
      'POST /auth/code',
      'POST /v1/cli/logins',
      'GET /device',
    ]) {
      expect(paths).toContain(p);
    }
  });

  /** Framing and encoding abuse no HTTP library would send, each to a JSON route and a page. */
  function handMade(): Array<{
    name: string;
    bytes: Buffer[];
    path: string;
    mayHang?: boolean;
    head?: boolean;
  }> {
    const auth = `xi-api-key: ${adminKey}\r\n`;
    const json = 'content-type: application/json\r\n';
    const formType = 'content-type: application/x-www-form-urlencoded\r\n';
    const host = 'host: 127.0.0.1\r\n';
    const sessionCookie = `cookie: breeze_session=${session}; breeze_form=${formCookie}\r\n`;
    const cases: Array<{ name: string; bytes: Buffer[]; path: string; mayHang?: boolean; head?: boolean }> =
      [];
    const add = (name: string, path: string, ...parts: Array<string | Buffer>) =>
      cases.push({ name, path, bytes: parts.map((p) => (typeof p === 'string' ? B(p) : p)) });
    for (const path of ['/v1/api-keys', '/login', '/device/approve', `/auth/code`]) {
      const head = `POST ${path} HTTP/1.1\r\n${host}${path.startsWith('/v1') ? auth + json : formType + sessionCookie}`;
      add(
        `${path}: invalid UTF-8 in the request target`,
        path,
        `POST ${path}/\xff\xfe?x=\xc3\x28 HTTP/1.1\r\n${host}\r\n`,
      );
      add(
        `${path}: invalid UTF-8 percent-encoded in the path`,
        path,
        `POST ${path}/%FF%FE%C3%28 HTTP/1.1\r\n${host}\r\n`,
      );
      add(
        `${path}: invalid UTF-8 in a header value`,
        path,
        `${head}x-note: \xff\xfe\xc3\x28\r\ncontent-length: 0\r\n\r\n`,
      );
      add(
        `${path}: control bytes in a header value`,
        path,
        `${head}x-note: a\x01\x7fb\r\ncontent-length: 0\r\n\r\n`,
      );
      add(`${path}: bad chunk size`, path, `${head}transfer-encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n`);
      add(
        `${path}: chunk size overflow`,
        path,
        `${head}transfer-encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n`,
      );
      add(
        `${path}: chunk without CRLF`,
        path,
        `${head}transfer-encoding: chunked\r\n\r\n3\r\nabcdef0\r\n\r\n`,
      );
      cases.push({
        name: `${path}: chunked body never finished`,
        path,
        mayHang: true,
        bytes: [B(`${head}transfer-encoding: chunked\r\n\r\n5\r\n{"a":\r\n`)],
      });
      add(
        `${path}: Transfer-Encoding and Content-Length`,
        path,
        `${head}content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n`,
      );
      add(
        `${path}: unknown transfer coding`,
        path,
        `${head}transfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
      );
      add(`${path}: non-numeric Content-Length`, path, `${head}content-length: abc\r\n\r\n{}`);
      add(`${path}: negative Content-Length`, path, `${head}content-length: -1\r\n\r\n{}`);
      add(
        `${path}: two different Content-Lengths`,
        path,
        `${head}content-length: 2\r\ncontent-length: 3\r\n\r\n{}x`,
      );
      add(
        `${path}: Content-Length shorter than the body`,
        path,
        `${head}content-length: 2\r\n\r\n{"name":"x","email":"a@b.c"}`,
      );
      cases.push({
        name: `${path}: truncated body (Content-Length longer than sent)`,
        path,
        mayHang: true,
        bytes: [B(`${head}content-length: 100\r\n\r\n{"name":`)],
      });
      add(
        `${path}: huge header (32 KiB)`,
        path,
        `${head}x-big: ${'a'.repeat(32 * 1024)}\r\ncontent-length: 0\r\n\r\n`,
      );
      add(
        `${path}: 500 headers`,
        path,
        `${head}${Array.from({ length: 500 }, (_, i) => `x-h${i}: ${i}\r\n`).join('')}content-length: 0\r\n\r\n`,
      );
      add(
        `${path}: huge cookie`,
        path,
        `${head}cookie: breeze_session=${'A'.repeat(12000)}\r\ncontent-length: 0\r\n\r\n`,
      );
      add(
        `${path}: oversized body (200 KiB)`,
        path,
        `${head}content-length: ${200 * 1024}\r\n\r\n`,
        Buffer.alloc(200 * 1024, 0x61),
      );
      add(
        `${path}: body of invalid UTF-8`,
        path,
        `${head}content-length: 12\r\n\r\n`,
        Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x80, 0x22, 0x7d]),
      );
      add(
        `${path}: bare LF line endings`,
        path,
        `POST ${path} HTTP/1.1\n${host.trim()}\ncontent-length: 0\n\n`,
      );
      add(`${path}: obsolete header folding`, path, `${head}x-fold: a\r\n  b\r\ncontent-length: 0\r\n\r\n`);
      add(`${path}: space before colon`, path, `${head}content-length : 0\r\n\r\n`);
      add(`${path}: HTTP/1.0 without Host`, path, `POST ${path} HTTP/1.0\r\ncontent-length: 0\r\n\r\n`);
      add(`${path}: HTTP/2 preface`, path, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
      add(`${path}: unknown method`, path, `BREW ${path} HTTP/1.1\r\n${host}\r\n`);
      add(`${path}: lower-case method`, path, `post ${path} HTTP/1.1\r\n${host}\r\n`);
      add(
        `${path}: absolute-form target`,
        path,
        `POST http://evil.example${path} HTTP/1.1\r\n${host}content-length: 0\r\n\r\n`,
      );
      add(`${path}: NUL in the target`, path, `POST ${path}\x00 HTTP/1.1\r\n${host}\r\n`);
      add(`${path}: binary garbage`, path, Buffer.from(randomBytes(256)));
      add(
        `${path}: pipelined good then bad`,
        path,
        `GET /healthz HTTP/1.1\r\n${host}\r\n${head}content-length: 2\r\n\r\n{}GARBAGE \xff\r\n\r\n`,
      );
    }
    cases.push({
      name: 'HEAD of a page',
      path: '/login',
      head: true,
      bytes: [B(`HEAD /login HTTP/1.1\r\n${host}connection: close\r\n\r\n`)],
    });
    add('OPTIONS *', '/', `OPTIONS * HTTP/1.1\r\n${host}connection: close\r\n\r\n`);
    add(
      'deep JSON nesting',
      '/v1/api-keys',
      `POST /v1/api-keys HTTP/1.1\r\n${host}${auth}${json}content-length: 20000\r\n\r\n${'['.repeat(10000)}${']'.repeat(10000)}`,
    );
    return cases;
  }

  // The raw client half-closes after sending: the server must still answer (app.ts sets
  // httpAllowHalfOpen; without it, handlers waiting on PostgreSQL had their answers dropped).
  it('answers hand-made framing and encoding abuse without a 5xx and keeps serving', async () => {
    const v: Verdict = { fiveXx: 0, parserLevel: 0, problems: [] };
    const cases = handMade();
    let answered = 0;
    for (const c of cases) {
      const res = await sendRaw(origin, c.bytes, {
        localAddress: nextAddress(),
        timeoutMs: c.mayHang ? 1500 : 5000,
        head: c.head,
      });
      if (res.responses.length > 0) answered++;
      if (res.responses.length === 0 && !c.mayHang && !res.error)
        v.problems.push(`${c.name}: no response at all (timed out: ${res.timedOut})`);
      for (const r of res.responses) {
        if (r.status >= 500) v.fiveXx++;
        if (!r.headers['x-request-id']) v.parserLevel++;
        const p = judge(r, c.path);
        if (p) v.problems.push(`${c.name}: ${p}`);
      }
    }
    console.log(
      `[http-fuzz] hand-made: ${cases.length} requests, ${answered} answered, 5xx: ${v.fiveXx}, ` +
        `answered without x-request-id: ${v.parserLevel}`,
    );
    expect(v.problems).toEqual([]);
    expect(v.parserLevel).toBe(0);
    expect(v.fiveXx).toBe(0);
    expect(answered).toBeGreaterThan(cases.length * 0.8);
    const health = await call(`${origin}/healthz`);
    expect(health.status).toBe(200);
  }, 60_000);

  /**
   * Requests the HTTP parser rejects (invalid bytes in the request line, broken chunked framing, bad
   * Content-Length, unknown methods, oversized headers) never reach a route: the server's
   * `clientErrorHandler` still answers them in the documented shape (this was a bug until c3154c2).
   */
  it('answers requests the HTTP parser rejects in the documented error shape too', async () => {
    const host = 'host: 127.0.0.1\r\n';
    const cases = [
      `GET /v1/me/\xff HTTP/1.1\r\n${host}\r\n`,
      `POST /v1/api-keys HTTP/1.1\r\n${host}transfer-encoding: chunked\r\n\r\nZZ\r\n\r\n`,
      `POST /v1/api-keys HTTP/1.1\r\n${host}content-length: abc\r\n\r\n`,
      `BREW /v1/me HTTP/1.1\r\n${host}\r\n`,
      `GET /v1/me HTTP/1.1\r\n${host}x-big: ${'a'.repeat(32 * 1024)}\r\n\r\n`,
    ];
    for (const c of cases) {
      const res = await sendRaw(origin, B(c), { localAddress: nextAddress() });
      const r = res.responses[0]!;
      expect(r.status).toBeLessThan(500);
      expect(r.headers['x-request-id']).toMatch(/^req_/);
      expect(JSON.parse(r.body.toString('utf8')).error.request_id).toBe(r.headers['x-request-id']);
    }
  });

  it(`answers ${RUNS} generated malformed requests to every route and page without a 5xx`, async () => {
    const weird = fc.oneof(
      controlString,
      fc.string({ maxLength: 30 }),
      fc.string({ unit: 'grapheme', maxLength: 10 }),
      fc.constantFrom(
        '',
        ' ',
        '%00',
        '%FF%FE',
        '%',
        '%ZZ',
        '../..',
        '__proto__',
        "' OR 1=1 --",
        'null',
        '[]',
        '{}',
      ),
      fc.uint8Array({ maxLength: 16 }).map((a) => Buffer.from(a).toString('latin1')),
    );
    // header values: printable ASCII and raw bytes 0x80-0xff (invalid UTF-8 the parser lets through);
    // control bytes and CR/LF are the job of the `corrupt` dimension below
    const headerWeird = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.constantFrom('', ' ', '__proto__', "' OR 1=1 --", 'null', '%FF'),
      fc
        .uint8Array({ minLength: 1, maxLength: 16 })
        .map((a) => Buffer.from(a.map((b) => 0x80 | b)).toString('latin1')),
    );
    const pct = (s: string) => encodeURIComponent(s);
    const pathFor = (r: { path: string }) =>
      fc.tuple(fc.constantFrom('real', 'real', 'weird', 'invalid-utf8', 'long'), weird).map(([kind, w]) =>
        r.path.replace(/\{(\w+)\}|:(\w+)/g, (_, a: string | undefined) => {
          const name = a ?? '';
          if (kind === 'real') return name === 'login_id' ? loginId : name === 'key_id' ? keyId : 'code_x';
          if (kind === 'invalid-utf8') return '%C3%28%FF';
          if (kind === 'long') return 'k'.repeat(3000);
          return pct(w);
        }),
      );
    const queryArb = fc.oneof(
      { arbitrary: fc.constant(''), weight: 4 },
      {
        weight: 4,
        arbitrary: fc
          .array(
            fc.tuple(fc.constantFrom('limit', 'cursor', 'status', 'next', 'user_code', 'a[b]', 'x'), weird),
            {
              maxLength: 4,
            },
          )
          .map((pairs) => `?${pairs.map(([k, v]) => `${k}=${pct(v)}`).join('&')}`),
      },
      {
        weight: 2,
        arbitrary: fc.constantFrom(
          '?next=%FF%FE',
          '?next=//evil.example',
          '?next=%2F%2Fevil.example',
          '?user_code=%00',
          `?user_code=${userCode}`,
          '?limit=1e999',
          '?limit=-1&limit=2',
          '?cursor=%C3%28',
          `?q=${'x'.repeat(4000)}`,
          '?%',
          '?=&&=',
        ),
      },
      fc.uint8Array({ minLength: 1, maxLength: 12 }).map((a) => `?raw=${Buffer.from(a).toString('latin1')}`),
    );
    const headerArb = fc.record(
      {
        'xi-api-key': fc.oneof(
          fc.constant(adminKey),
          headerWeird,
          fc.constant('brz_' + 'A'.repeat(46)),
          fc.constant('\xff\xfe\xc3\x28'),
        ),
        authorization: fc.oneof(
          fc.constant(`Bearer ${adminKey}`),
          headerWeird.map((w) => `Bearer ${w}`),
          fc.constant('Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.AAAA'),
          fc.constant('Basic Zm9vOmJhcg=='),
          fc.constant('Bearer'),
        ),
        cookie: fc.oneof(
          fc.constant(`breeze_session=${session}`),
          fc.constant(`breeze_form=${formCookie}`),
          fc.constant(`breeze_session=${session}; breeze_form=${formCookie}`),
          headerWeird.map((w) => `breeze_session=${w}`),
          fc.constant('breeze_session=\xff\xfe; ===; ;;'),
          fc.constant(Array.from({ length: 150 }, (_, i) => `c${i}=${i}`).join('; ')),
          fc.constant(`breeze_session=${'A'.repeat(43)}`),
        ),
        'content-type': fc.constantFrom(
          'application/json',
          'application/json; charset=utf-8',
          'application/json; charset=latin1',
          'application/json; charset=utf-16',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=x',
          'text/plain',
          'application/xml',
          ';;;',
          '\xff/\xfe',
        ),
        origin: fc.constantFrom('http://evil.example', 'null', origin, '\xff', 'not a url'),
        'sec-fetch-site': fc.constantFrom('cross-site', 'same-origin', 'none', 'same-site', '\xff'),
        accept: fc.constantFrom('text/html', 'application/json', '*/*', '\xff'),
        'x-forwarded-for': fc.constantFrom('1.2.3.4', '\xff', ''),
      },
      { requiredKeys: [] },
    );
    const challenge = createHash('sha256').update('v'.repeat(43)).digest('base64url');
    // bodies each route accepts but for one field with a control character: they pass every other
    // check and reach the text rule (before it, PostgreSQL answered these with 500)
    const poisonedArb = fc
      .oneof(
        fc.record({ name: poison('laptop key') }),
        fc.constantFrom('client_name', 'hostname', 'key_name', 'state').chain((field) => {
          const base: Record<string, string> = {
            code_challenge: challenge,
            code_challenge_method: 'S256',
            client_name: 'breeze/1.0.0',
            hostname: 'laptop',
            key_name: 'ci key',
            state: 'abc',
          };
          return poison(base[field] ?? '').map((v) => ({ ...base, [field]: v }));
        }),
        fc.record({ email: poison('someone@example.com'), type: fc.constant('api_key') }),
      )
      .map((o) => Buffer.from(JSON.stringify(o)));
    const poisonedFormArb = poison('fuzz@example.com').map((email) =>
      Buffer.from(`email=${pct(email)}&csrf=${pct(formCsrf)}&next=%2Fdevice`),
    );
    const bodyArb = fc.oneof(
      fc.constant(undefined),
      poisonedArb,
      poisonedFormArb,
      fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v))),
      fc
        .record(
          {
            name: weird,
            scopes: fc.oneof(fc.array(weird, { maxLength: 3 }), fc.constant(['read', 'admin'])),
            email: fc.oneof(weird, fc.constant('fuzz@example.com')),
            type: fc.constantFrom('api_key', 'jwt', 'x'),
            code: weird,
            code_verifier: weird,
            code_challenge: weird,
            code_challenge_method: fc.constantFrom('S256', 'plain'),
            grace_period_s: fc.oneof(fc.integer(), fc.double(), weird),
            expires_in_s: fc.oneof(fc.integer(), weird),
          },
          { requiredKeys: [] },
        )
        .map((o) => Buffer.from(JSON.stringify(o))),
      fc
        .array(
          fc.tuple(
            fc.constantFrom(
              'csrf',
              'email',
              'code',
              'code_id',
              'next',
              'user_code',
              'csrf[]',
              'email[a]',
              '',
            ),
            fc.oneof(weird, fc.constantFrom(formCookie, sessionCsrf, userCode, 'fuzz@example.com', '%FF%FE')),
          ),
          { maxLength: 6 },
        )
        .map((pairs) => Buffer.from(pairs.map(([k, v]) => `${k}=${pct(v)}`).join('&'), 'latin1')),
      fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
      fc.constantFrom(
        Buffer.alloc(70 * 1024, 0x61),
        Buffer.from('{"__proto__":{"admin":true},"constructor":{"prototype":{"x":1}},"name":"p"}'),
        Buffer.from([0x7b, 0x22, 0x6e, 0x61, 0x6d, 0x65, 0x22, 0x3a, 0x22, 0xff, 0xc3, 0x28, 0x22, 0x7d]),
        Buffer.from('email=%FF%FE%C3%28&csrf=%E0%80%80&next=%ED%A0%80'),
      ),
    );
    const framingArb = fc.constantFrom(
      'length',
      'length',
      'length',
      'length',
      'length',
      'length',
      'chunked',
      'bad-chunked',
      'short-length',
      'truncated',
      'no-length',
      'http10',
    );
    const methodArb = fc.oneof(
      { arbitrary: fc.constant(undefined), weight: 6 },
      fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE', 'BREW', 'get'),
    );
    const rawTargetArb = fc.oneof(
      { arbitrary: fc.constant(''), weight: 12 },
      fc.constantFrom('\xff\xfe', '\xc3\x28', '%', '/..', '#frag', '\x7f', '\x00', ' x'),
    );
    // at most one header line that breaks the parser (CTLs, CR/LF injection, no colon...)
    const corruptArb = fc.oneof(
      { arbitrary: fc.constant(''), weight: 12 },
      fc.constantFrom(
        'x-bad: a\x01b\r\n',
        'user-agent: a\x00b\r\n',
        'cookie: breeze_session=a\x00b\r\n',
        'x-bad: a\rb\r\n',
        'no colon here\r\n',
        ' leading-space: x\r\n',
        'x-bad\xff: v\r\n',
        `x-big: ${'b'.repeat(20 * 1024)}\r\n`,
        'content-length: 1\r\ncontent-length: 2\r\n',
      ),
    );

    const requestArb = fc.constantFrom(...routes).chain((route) =>
      fc.record({
        route: fc.constant(route),
        path: pathFor(route),
        method: methodArb,
        query: queryArb,
        rawTarget: rawTargetArb,
        headers: headerArb,
        body: bodyArb,
        framing: framingArb,
        corrupt: corruptArb,
      }),
    );

    const samples = fc.sample(requestArb, { numRuns: RUNS, seed: SEED });
    const v: Verdict = { fiveXx: 0, parserLevel: 0, problems: [] };
    const statuses = new Map<number, number>();
    let answered = 0;
    let next = 0;
    const worker = async () => {
      while (next < samples.length) {
        const s = samples[next++]!;
        const method = s.method ?? s.route.method;
        const target = `${s.path}${s.rawTarget}${s.query}`;
        const headers: Record<string, string> = { host: '127.0.0.1', connection: 'close', ...s.headers };
        const body = s.body;
        const parts: Buffer[] = [];
        let mayHang = false;
        const version = s.framing === 'http10' ? 'HTTP/1.0' : 'HTTP/1.1';
        if (body) {
          if (s.framing === 'chunked') headers['transfer-encoding'] = 'chunked';
          else if (s.framing === 'bad-chunked') headers['transfer-encoding'] = 'chunked';
          else if (s.framing === 'short-length')
            headers['content-length'] = String(Math.max(0, body.length - 3));
          else if (s.framing === 'truncated') {
            headers['content-length'] = String(body.length + 50);
            mayHang = true;
          } else if (s.framing !== 'no-length') headers['content-length'] = String(body.length);
        }
        const head = `${method} ${target} ${version}\r\n${Object.entries(headers)
          .map(([k, val]) => `${k}: ${val}\r\n`)
          .join('')}${s.corrupt}\r\n`;
        parts.push(B(head));
        if (body) {
          if (s.framing === 'chunked')
            parts.push(B(`${body.length.toString(16)}\r\n`), body, B('\r\n0\r\n\r\n'));
          else if (s.framing === 'bad-chunked')
            parts.push(B(`${(body.length + 7).toString(16)}\r\n`), body, B('\r\nQ\r\n'));
          else parts.push(body);
        }
        const res = await sendRaw(origin, parts, {
          localAddress: nextAddress(),
          timeoutMs: mayHang ? 1000 : 5000,
          head: method === 'HEAD',
        });
        if (res.responses.length > 0) answered++;
        if (res.responses.length === 0 && !mayHang && res.timedOut) {
          v.problems.push(`no answer within 5 s: ${JSON.stringify(head.slice(0, 200))}`);
        }
        for (const r of res.responses) {
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          if (r.status >= 500) v.fiveXx++;
          if (!r.headers['x-request-id']) {
            v.parserLevel++;
            if (process.env.BREEZE_FUZZ_DEBUG) console.log(JSON.stringify(head.slice(0, 400)));
          }
          const p = judge(r, target);
          if (p && v.problems.length < 20)
            v.problems.push(`${p}\n    request: ${JSON.stringify(head.slice(0, 300))}`);
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    const byStatus = [...statuses.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([k, n]) => `${k}:${n}`)
      .join(' ');
    console.log(
      `[http-fuzz] generated: ${RUNS} requests (seed ${SEED}), ${answered} answered, 5xx: ${v.fiveXx}, ` +
        `answered without x-request-id: ${v.parserLevel}; statuses ${byStatus}`,
    );
    expect(v.problems).toEqual([]);
    expect(v.parserLevel).toBe(0);
    expect(v.fiveXx).toBe(0);
    // the fuzz got past the parser and the auth wall: handlers answered, not just 400/401
    expect(answered).toBeGreaterThan(RUNS * 0.8);
    const reachedHandlers = [200, 201, 204, 303, 403, 404, 409, 413].filter((c) => statuses.has(c));
    expect(reachedHandlers.length).toBeGreaterThanOrEqual(5);

    const health = await call(`${origin}/healthz`);
    expect(health.status).toBe(200);
    // and nothing was logged as an unhandled error
    const errorLines = server
      .output()
      .split('\n')
      .filter((l) => l.includes('"level":50'));
    expect(errorLines).toEqual([]);
  }, 120_000);
});
