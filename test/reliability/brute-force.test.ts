import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requirePart } from '../helpers/require.js';
import {
  browserSignIn,
  cookiePairs,
  form,
  inputValue,
  latestCode,
  loopbackAliases,
  type RawResponse,
  rawRequest,
} from './raw-http.js';
import { distReady, type ServerProcess, spawnFixtureServer } from './server-process.js';

/**
 * Guessing and abuse over real HTTP against a server process: every secret a stranger could try to
 * guess (email codes, the device page's user codes, CLI login ids) is bounded per code and/or rate
 * limited per client, and every limit answers 429 with `Retry-After` (JSON routes: RATE_LIMITED in
 * the error shape; pages: an HTML page). Attackers spread over many source addresses (127.x.y.z):
 * per-code bounds must hold whatever the number of addresses.
 */
const skip =
  requirePart('dist build', distReady, 'dist/server/serve.js is missing (the build failed?)') ||
  requirePart(
    'loopback aliases',
    loopbackAliases,
    'this system cannot use 127.x.y.z as distinct client addresses',
  );

let addressCounter = 0;
/** A fresh loopback source address: 127.2.0.1, 127.2.0.2, ... */
function nextAddress(): string {
  const n = ++addressCounter;
  return `127.2.${(n >> 8) & 255}.${n & 255 || 1}`;
}

interface ErrorJson {
  id?: string;
  error: { code: string; statusCode: number; request_id: string };
}
const json = (res: RawResponse) => JSON.parse(res.body.toString('utf8')) as ErrorJson;

/** A 429 as API.md documents it; returns the Retry-After seconds. */
function expectRateLimited(res: RawResponse, page = false): number {
  expect(res.status).toBe(429);
  const retryAfter = res.headers['retry-after'];
  expect(retryAfter).toMatch(/^\d+$/);
  expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
  if (page) {
    expect(res.headers['content-type']).toMatch(/^text\/html/);
  } else {
    const body = json(res);
    expect(body.error.code).toBe('RATE_LIMITED');
    expect(body.error.statusCode).toBe(429);
    expect(body.error.request_id).toBe(res.headers['x-request-id']);
  }
  return Number(retryAfter);
}

const figures: string[] = [];

describe.skipIf(skip)('brute force and abuse', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'breeze-brute-'));
  let server: ServerProcess;
  let origin = '';
  let tried = 0;

  const post = (path: string, body: unknown, localAddress: string, headers: Record<string, string> = {}) => {
    tried++;
    return rawRequest(origin, {
      method: 'POST',
      path,
      localAddress,
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  };

  beforeAll(async () => {
    server = await spawnFixtureServer(dataDir);
    origin = server.url;
  }, 30_000);
  afterAll(async () => {
    console.log(`[brute-force] ${tried} requests tried\n  ${figures.join('\n  ')}`);
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function issueCode(email: string): Promise<{ id: string; code: string }> {
    const res = await post('/auth/code', { email, type: 'api_key' }, nextAddress());
    expect(res.status).toBe(201);
    let code: string | undefined;
    for (let i = 0; i < 100 && !code; i++) {
      code = latestCode(dataDir, email)?.code;
      if (!code) await new Promise((r) => setTimeout(r, 20));
    }
    return { id: json(res).id as string, code: code! };
  }

  it('an email code takes at most 5 guesses, even from 40 addresses at once', async () => {
    const { id, code } = await issueCode('victim1@example.com');
    const wrong = code === 'AAAAAAAA' ? 'BBBBBBBB' : 'AAAAAAAA';
    // a parallel burst from 40 addresses: the try is counted before the compare
    const burst = await Promise.all(
      Array.from({ length: 40 }, () =>
        post(`/auth/code/${id}/verifications`, { code: wrong }, nextAddress()),
      ),
    );
    const statuses = burst.map((r) => r.status);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(5);
    expect(statuses.every((s) => s === 401 || s === 404)).toBe(true);
    // the code is dead now: even the right one is refused, and no key was minted
    const right = await post(`/auth/code/${id}/verifications`, { code }, nextAddress());
    expect(right.status).toBe(404);
    expect(right.body.toString()).not.toContain('brz_');
    figures.push(
      `email code: 41 verifications from 41 addresses -> ${statuses.filter((s) => s === 401).length} compared (401), rest 404; right code after that: ${right.status}`,
    );
  }, 30_000);

  it('verifications are limited to 30/min per address (429 + Retry-After)', async () => {
    const { id } = await issueCode('victim2@example.com');
    const from = nextAddress();
    const statuses: number[] = [];
    let limited: RawResponse | undefined;
    for (let i = 0; i < 35 && !limited; i++) {
      const res = await post(`/auth/code/${id}/verifications`, { code: 'ZZZZZZZZ' }, from);
      statuses.push(res.status);
      if (res.status === 429) limited = res;
    }
    expect(limited, `statuses: ${statuses.join(',')}`).toBeDefined();
    expect(statuses.length).toBe(31);
    const after = expectRateLimited(limited!);
    expect(after).toBeLessThanOrEqual(60);
    figures.push(`verifications from one address: 429 on request ${statuses.length}, Retry-After ${after} s`);
  }, 30_000);

  it('code requests: 10/min per address and 5/10 min per email, whatever the address', async () => {
    const from = nextAddress();
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      statuses.push((await post('/auth/code', { email: `spray${i}@example.com`, type: 'jwt' }, from)).status);
    }
    expect(statuses.slice(0, 10).every((s) => s === 201)).toBe(true);
    expect(statuses[10]).toBe(429);
    const perIp = expectRateLimited(await post('/auth/code', { email: 'x@example.com', type: 'jwt' }, from));
    // one mailbox from many addresses: the sixth request is refused (no mail flood)
    const perEmail: number[] = [];
    let limited: RawResponse | undefined;
    for (let i = 0; i < 6; i++) {
      const res = await post('/auth/code', { email: 'flooded@example.com', type: 'api_key' }, nextAddress());
      perEmail.push(res.status);
      if (res.status === 429) limited = res;
    }
    expect(perEmail).toEqual([201, 201, 201, 201, 201, 429]);
    const after = expectRateLimited(limited!);
    expect(after).toBeGreaterThan(60);
    expect(after).toBeLessThanOrEqual(600);
    figures.push(
      `POST /auth/code: 429 after 10/min per address (Retry-After ${perIp} s), after 5 per email from 6 addresses (Retry-After ${after} s)`,
    );
  }, 30_000);

  it('the sign-in page: codes die after 5 wrong tries; the forms are rate limited per address', async () => {
    const from = nextAddress();
    const page = await rawRequest(origin, { path: '/login', localAddress: from });
    const cookie = `breeze_form=${cookiePairs(page).breeze_form}`;
    const csrf = inputValue(page.body.toString(), 'csrf')!;
    const formPost = (path: string, fields: Record<string, string>, localAddress: string) => {
      tried++;
      return rawRequest(origin, {
        method: 'POST',
        path,
        localAddress,
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: form({ csrf, next: '/device', ...fields }),
      });
    };
    const email = 'pagevictim@example.com';
    const sent = await formPost('/login', { email }, from);
    expect(sent.status).toBe(200);
    const codeId = inputValue(sent.body.toString(), 'code_id')!;
    let code: string | undefined;
    for (let i = 0; i < 100 && !code; i++) {
      code = latestCode(dataDir, email)?.code;
      if (!code) await new Promise((r) => setTimeout(r, 20));
    }
    const wrong = code === 'AAAAAAAA' ? 'BBBBBBBB' : 'AAAAAAAA';
    const guesses = await Promise.all(
      Array.from({ length: 12 }, () =>
        formPost('/login/code', { email, code_id: codeId, code: wrong }, nextAddress()),
      ),
    );
    expect(guesses.filter((g) => g.status === 401).length).toBeLessThanOrEqual(5);
    const right = await formPost('/login/code', { email, code_id: codeId, code: code! }, nextAddress());
    expect(right.status).not.toBe(303);
    expect(cookiePairs(right).breeze_session).toBeUndefined();

    // per address: POST /login/code is limited (30/min)
    const one = nextAddress();
    let limited: RawResponse | undefined;
    let n = 0;
    while (!limited && n < 40) {
      n++;
      const r = await formPost('/login/code', { email, code_id: 'code_nope', code: wrong }, one);
      if (r.status === 429) limited = r;
    }
    expect(limited, 'POST /login/code never limited').toBeDefined();
    const after = expectRateLimited(limited!, true);

    // mail requests from the form: per address (20/min), and per mailbox from any address (10/10 min)
    const three = nextAddress();
    let k = 0;
    limited = undefined;
    while (!limited && k < 30) {
      k++;
      const r = await formPost('/login', { email: `form${k}@example.com` }, three);
      if (r.status === 429) limited = r;
    }
    expect(limited, 'POST /login never limited per address').toBeDefined();
    const afterLogin = expectRateLimited(limited!, true);
    let j = 0;
    limited = undefined;
    while (!limited && j < 15) {
      j++;
      const r = await formPost('/login', { email: 'mailbox@example.com' }, nextAddress());
      if (r.status === 429) limited = r;
    }
    expect(limited, 'POST /login never limited per mailbox').toBeDefined();
    const afterMailbox = expectRateLimited(limited!, true);
    figures.push(
      `sign-in page: 12 parallel wrong codes -> ${guesses.filter((g) => g.status === 401).length} compared, right code afterwards refused; ` +
        `from one address: POST /login/code 429 on request ${n} (Retry-After ${after} s), POST /login 429 on request ${k} ` +
        `(Retry-After ${afterLogin} s); one mailbox from many addresses: 429 on request ${j} (Retry-After ${afterMailbox} s)`,
    );
  }, 30_000);

  it('the device page: guessing user codes is limited per address (429 + Retry-After)', async () => {
    const from = nextAddress();
    const session = await browserSignIn(origin, dataDir, 'guesser@example.com', from);
    const cookie = `breeze_session=${session}`;
    const devicePage = await rawRequest(origin, {
      path: '/device',
      headers: { cookie },
      localAddress: nextAddress(),
    });
    const csrf = inputValue(devicePage.body.toString(), 'csrf')!;
    const letters = 'BCDFGHJKLMNPQRSTVWXZ';
    const guess = () =>
      Array.from(randomBytes(8), (b) => letters[b % 20])
        .join('')
        .replace(/^(.{4})/, '$1-');
    // typed into the page (GET ?user_code=) from one address
    const one = nextAddress();
    let n = 0;
    let limited: RawResponse | undefined;
    const seen = new Set<number>();
    while (!limited && n < 70) {
      n++;
      tried++;
      const r = await rawRequest(origin, {
        path: `/device?user_code=${guess()}`,
        headers: { cookie },
        localAddress: one,
      });
      seen.add(r.status);
      if (r.status === 429) limited = r;
    }
    expect(limited, `GET /device never limited (statuses ${[...seen]})`).toBeDefined();
    expect([...seen].filter((s) => s !== 429)).toEqual([404]);
    const afterGet = expectRateLimited(limited!, true);
    // posted to Approve from one address
    const two = nextAddress();
    let m = 0;
    limited = undefined;
    while (!limited && m < 70) {
      m++;
      tried++;
      const r = await rawRequest(origin, {
        method: 'POST',
        path: '/device/approve',
        localAddress: two,
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: form({ csrf, user_code: guess() }),
      });
      if (r.status === 429) limited = r;
      else expect(r.status).toBe(404);
    }
    expect(limited, 'POST /device/approve never limited').toBeDefined();
    const afterPost = expectRateLimited(limited!, true);
    figures.push(
      `device page: random user codes -> 429 on request ${n} (GET, Retry-After ${afterGet} s) and ${m} (POST approve, Retry-After ${afterPost} s) from one address; the limit is per address, not per session`,
    );
  }, 60_000);

  it('CLI logins: guessing login ids at the exchange and creating logins are limited per address', async () => {
    const one = nextAddress();
    let n = 0;
    let limited: RawResponse | undefined;
    const seen = new Set<number>();
    const verifier = randomBytes(32).toString('base64url');
    while (!limited && n < 700) {
      n++;
      const r = await post(
        `/v1/cli/logins/login_${randomBytes(16).toString('base64url')}/exchange`,
        { code_verifier: verifier },
        one,
      );
      seen.add(r.status);
      if (r.status === 429) limited = r;
      else expect(json(r).error.code).toBe('INVALID_GRANT');
    }
    expect(limited, `${n} exchanges with guessed login ids from one address, never limited`).toBeDefined();
    const afterExchange = expectRateLimited(limited!);

    const two = nextAddress();
    let m = 0;
    limited = undefined;
    while (!limited && m < 200) {
      m++;
      const r = await post(
        '/v1/cli/logins',
        {
          code_challenge: createHash('sha256').update(verifier).digest('base64url'),
          code_challenge_method: 'S256',
          client_name: 'breeze/abuse',
          hostname: `h${m}`,
        },
        two,
      );
      if (r.status === 429) limited = r;
      else expect(r.status).toBe(201);
    }
    expect(limited, `${m} logins created from one address, never limited`).toBeDefined();
    const afterCreate = expectRateLimited(limited!);
    figures.push(
      `CLI logins: exchange with guessed ids -> 429 on request ${n} (Retry-After ${afterExchange} s); creating logins -> 429 on request ${m} (Retry-After ${afterCreate} s), from one address`,
    );
  }, 60_000);

  it('API keys: guessed keys are refused without a database lookup and the server stays responsive', async () => {
    const from = nextAddress();
    const { generateApiKey } = await import('../../src/core/api-key.js');
    const started = Date.now();
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => {
        tried++;
        // half with a valid checksum (a real lookup), half without (refused before any lookup)
        const key = i % 2 ? generateApiKey() : `brz_${randomBytes(34).toString('base64url').slice(0, 46)}`;
        return rawRequest(origin, { path: '/v1/me', headers: { 'xi-api-key': key }, localAddress: from });
      }),
    );
    expect(results.every((r) => r.status === 401)).toBe(true);
    expect(results.every((r) => json(r).error.code === 'AUTH_REQUIRED')).toBe(true);
    figures.push(
      `API keys: 200 guessed keys -> 200 x 401 in ${Date.now() - started} ms (a 238-bit key space needs no limit to be safe)`,
    );
  }, 30_000);
});
