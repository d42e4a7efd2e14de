import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createSecretHasher } from '../../src/core/hash.js';
import type {
  CliLoginExchangeResult,
  CliLoginStart,
  CreatedKeyResponse,
  MeResponse,
} from '../../src/core/types.js';
import { KeyService } from '../../src/server/key-service.js';
import { openStore, type Store } from '../../src/server/store/index.js';
import { VerificationCache } from '../../src/server/verification-cache.js';
import { postgresAvailability, startPostgres, type TestPostgres, uniqueDbName } from '../helpers/postgres.js';
import { requirePart } from '../helpers/require.js';

/**
 * Several server PROCESSES behind one PostgreSQL database, as behind a load balancer: A and B are
 * the real `breeze serve --database-url`, C is test/fixtures/serve-instance.mjs with a 60 s key
 * cache, so a revocation C honours within a second can only have arrived by NOTIFY.
 */

const avail = postgresAvailability();
const builtCli = existsSync('dist/cli/main.js') && existsSync('dist/server/serve.js');
const skip =
  requirePart('PostgreSQL', avail.available, avail.why) ||
  requirePart('built dist/', builtCli, 'dist/ is missing: run "npx tsc -p tsconfig.build.json"');

/** What a load balancer would put in front of the instances: one public URL for all. */
const PUBLIC_URL = 'http://breeze.test';
const PEPPER = `multi-instance-${randomBytes(8).toString('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Instance {
  name: string;
  url: string;
  dataDir: string;
  proc: ChildProcess;
  output: () => string;
}

async function startInstance(
  name: string,
  kind: 'cli' | 'fixture',
  databaseUrl: string,
  root: string,
  pepper: string | null = PEPPER,
): Promise<Instance> {
  const dataDir = join(root, name);
  const args =
    kind === 'cli'
      ? [
          'bin/breeze.js',
          'serve',
          '--port',
          '0',
          '--database-url',
          databaseUrl,
          '--data-dir',
          dataDir,
          '--public-url',
          PUBLIC_URL,
        ]
      : ['test/fixtures/serve-instance.mjs', dataDir, databaseUrl, '60000', PUBLIC_URL];
  const proc = spawn(process.execPath, args, {
    env: {
      ...process.env,
      BREEZE_PEPPER: pepper ?? '',
      BREEZE_CONFIG_DIR: join(root, `${name}-config`),
      FORCE_COLOR: '0',
      CI: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d) => {
    out += d;
  });
  proc.stderr?.on('data', (d) => {
    out += d;
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    const m = /"url":"(http:\/\/[^"]+)"|listening on (http:\/\/\S+)/.exec(out);
    const url = m?.[1] ?? m?.[2];
    if (url) return { name, url, dataDir, proc, output: () => out };
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`instance ${name} did not start:\n${out}`);
    }
    await sleep(50);
  }
}

async function stopInstance(i: Instance): Promise<void> {
  if (i.proc.exitCode !== null || i.proc.signalCode !== null) return;
  const exited = new Promise((r) => i.proc.once('exit', r));
  i.proc.kill('SIGTERM');
  const timedOut = await Promise.race([exited.then(() => false), sleep(10_000).then(() => true)]);
  if (timedOut) i.proc.kill('SIGKILL');
}

interface ErrorBody {
  error: { code: string };
}
const json = async <T>(res: Response): Promise<T> => (await res.json()) as T;

function api(i: Instance, method: string, path: string, key?: string, body?: unknown) {
  return fetch(`${i.url}${path}`, {
    method,
    headers: {
      ...(key ? { 'xi-api-key': key } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
}

describe.skipIf(skip)('several server processes on one PostgreSQL database', () => {
  let pgs: TestPostgres;
  let root: string;
  let store: Store;
  let A: Instance;
  let B: Instance;
  let C: Instance;
  const started: Instance[] = [];
  let adminKey: string;
  const latencies: string[] = [];

  beforeAll(async () => {
    pgs = await startPostgres();
    const url = await pgs.createDatabase(uniqueDbName('multi'));
    root = mkdtempSync('/tmp/breeze-multi-');
    // all three start at once on the fresh database: migrations must serialise themselves
    const starting = [
      startInstance('a', 'cli', url, root),
      startInstance('b', 'cli', url, root),
      startInstance('c', 'fixture', url, root),
    ];
    // keep every instance that did start, so afterAll stops it even when another one failed
    const settled = await Promise.allSettled(starting);
    for (const r of settled) if (r.status === 'fulfilled') started.push(r.value);
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    [A, B, C] = started as [Instance, Instance, Instance];
    // the first admin key, minted as the email-code flow would, with the deployment's pepper
    store = await openStore({ databaseUrl: url });
    const user = await store.users.ensure('ops@example.com');
    const keys = new KeyService(
      store,
      createSecretHasher(Buffer.from(PEPPER)),
      new VerificationCache(0),
      () => new Date(),
    );
    adminKey = (
      await keys.mint({
        userId: user.id,
        name: 'seed',
        scopes: ['read', 'write', 'admin'],
        expiresAt: null,
        createdVia: 'api',
      })
    ).apiKey;
  }, 90_000);

  afterAll(async () => {
    if (latencies.length) console.info(`[multi-instance] revocation latency: ${latencies.join(', ')}`);
    await Promise.all(started.map(stopInstance));
    await store?.close();
    await pgs?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  async function createKey(on: Instance, name: string): Promise<{ key: string; id: string }> {
    const res = await api(on, 'POST', '/v1/api-keys', adminKey, { name, scopes: ['read'] });
    expect(res.status).toBe(201);
    const body = (await res.json()) as CreatedKeyResponse;
    return { key: body.api_key, id: body.key_id };
  }

  /** Polls `on` every 50 ms until it refuses `key`; returns ms since `since`. */
  async function msUntilRefused(on: Instance, key: string, since: number): Promise<number> {
    for (;;) {
      const res = await api(on, 'GET', '/v1/me', key);
      const elapsed = performance.now() - since;
      if (res.status === 401) return elapsed;
      expect(res.status).toBe(200);
      if (elapsed > 5_000) return elapsed;
      await sleep(50);
    }
  }

  test('a key created on A authenticates on B and C', async () => {
    const { key, id } = await createKey(A, 'made on A');
    for (const other of [B, C]) {
      const res = await api(other, 'GET', '/v1/me', key);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-breeze-api-key-id')).toBe(id);
      expect((await json<MeResponse>(res)).user.email).toBe('ops@example.com');
    }
  });

  for (const action of ['disable', 'delete', 'rotate'] as const) {
    test(`${action} on A: B and C refuse the key within one second`, async () => {
      const { key, id } = await createKey(A, `to ${action}`);
      // warm both caches: C would keep serving the key for 60 s without a notification
      for (const other of [B, C]) expect((await api(other, 'GET', '/v1/me', key)).status).toBe(200);

      const t0 = performance.now();
      const res = {
        disable: () => api(A, 'POST', `/v1/api-keys/${id}/disable`, adminKey),
        delete: () => api(A, 'DELETE', `/v1/api-keys/${id}`, adminKey),
        // no grace period: the old key must stop at once
        rotate: () => api(A, 'POST', `/v1/api-keys/${id}/rotate`, adminKey, { grace_period_s: 0 }),
      }[action];
      expect((await res()).status).toBe({ disable: 200, delete: 204, rotate: 201 }[action]);
      const [onB, onC] = await Promise.all([msUntilRefused(B, key, t0), msUntilRefused(C, key, t0)]);
      latencies.push(`${action}: B ${onB.toFixed(0)} ms, C ${onC.toFixed(0)} ms`);
      expect(onB).toBeLessThan(1000);
      expect(onC).toBeLessThan(1000);
      expect((await api(A, 'GET', '/v1/me', key)).status).toBe(401);
    });
  }

  test('scopes narrowed on A are what B and C enforce, within one second', async () => {
    const res = await api(A, 'POST', '/v1/api-keys', adminKey, {
      name: 'narrow',
      scopes: ['read', 'write', 'admin'],
    });
    const { api_key: key, key_id: id } = await json<CreatedKeyResponse>(res);
    // an admin key may list keys; cache it as admin on B and C
    for (const other of [B, C]) expect((await api(other, 'GET', '/v1/api-keys', key)).status).toBe(200);
    const t0 = performance.now();
    expect((await api(A, 'PATCH', `/v1/api-keys/${id}`, adminKey, { scopes: ['read'] })).status).toBe(200);
    for (const other of [B, C]) {
      for (;;) {
        const status = (await api(other, 'GET', '/v1/api-keys', key)).status;
        if (status === 403) break;
        expect(status).toBe(200);
        expect(performance.now() - t0).toBeLessThan(1000);
        await sleep(50);
      }
    }
  });

  test('enable on B: A and C accept the key again within one second', async () => {
    const { key, id } = await createKey(A, 'toggle');
    expect((await api(A, 'POST', `/v1/api-keys/${id}/disable`, adminKey)).status).toBe(200);
    // C now holds the disabled key in its 60 s cache
    expect((await api(C, 'GET', '/v1/me', key)).status).toBe(401);
    const t0 = performance.now();
    expect((await api(B, 'POST', `/v1/api-keys/${id}/enable`, adminKey)).status).toBe(200);
    for (const other of [A, C]) {
      for (;;) {
        const status = (await api(other, 'GET', '/v1/me', key)).status;
        if (status === 200) break;
        expect(status).toBe(401);
        expect(performance.now() - t0).toBeLessThan(1000);
        await sleep(50);
      }
    }
  });

  test('an email code mailed by A is redeemed once across B and C; its JWT works everywhere', async () => {
    const jwks = await Promise.all(
      [A, B, C].map(async (i) => json(await api(i, 'GET', '/.well-known/jwks.json'))),
    );
    // the three started together on an empty database and still agree on one signing key set
    expect(jwks[1]).toEqual(jwks[0]);
    expect(jwks[2]).toEqual(jwks[0]);

    const seen = outboxFiles(A);
    const requested = await api(A, 'POST', '/auth/code', undefined, {
      email: 'jwt@example.com',
      type: 'jwt',
    });
    expect(requested.status).toBe(201);
    const { id } = await json<{ id: string }>(requested);
    const code = await mailedCode(A, seen);

    // the same code at the same moment on two instances: one token, one refusal
    const verify = (i: Instance) => api(i, 'POST', `/auth/code/${id}/verifications`, undefined, { code });
    const [onB, onC] = await Promise.all([verify(B), verify(C)]);
    expect([onB.status, onC.status].sort()).toEqual([200, 404]);
    const winner = onB.status === 200 ? onB : onC;
    const { token } = await json<{ token: string }>(winner);
    for (const i of [A, B, C]) {
      const me = await fetch(`${i.url}/v1/me`, { headers: { authorization: `Bearer ${token}` } });
      expect(me.status).toBe(200);
      expect(await json<MeResponse>(me)).toMatchObject({
        user: { email: 'jwt@example.com' },
        auth: { type: 'jwt' },
      });
    }
  });

  test('a CLI login started on A, approved in the browser on B, exchanged on C', async () => {
    const verifier = randomBytes(32).toString('base64url');
    const started = await api(A, 'POST', '/v1/cli/logins', undefined, {
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      client_name: 'breeze/test',
      hostname: 'multi-host',
    });
    expect(started.status).toBe(201);
    const login = await json<CliLoginStart>(started);

    // C knows the login A created: not approved yet
    const early = await api(C, 'POST', `/v1/cli/logins/${login.login_id}/exchange`, undefined, {
      code_verifier: verifier,
    });
    expect(early.status).toBe(400);
    expect((await json<ErrorBody>(early)).error.code).toBe('AUTHORIZATION_PENDING');

    // sign in on B's pages (email -> mailed code -> session cookie), then approve there
    const browser = new Browser(B);
    const signIn = await browser.get('/login');
    const formCsrf = hidden(signIn, 'csrf');
    const seen = outboxFiles(B);
    const codePage = await browser.post('/login', {
      csrf: formCsrf,
      email: 'ops@example.com',
      next: '/device',
    });
    const codeId = hidden(codePage, 'code_id');
    const code = await mailedCode(B, seen);
    const signedIn = await browser.post(
      '/login/code',
      { csrf: hidden(codePage, 'csrf'), code_id: codeId, email: 'ops@example.com', code, next: '/device' },
      303,
    );
    expect(signedIn).toBe('');
    // a login from another device: its Approve page appears once the code is typed
    const entry = await browser.get('/device');
    const approvePage = await browser.post('/device', {
      csrf: hidden(entry, 'csrf'),
      user_code: login.user_code,
    });
    expect(approvePage).toContain('multi-host');
    const approved = await browser.post('/device/approve', {
      csrf: hidden(approvePage, 'csrf'),
      user_code: login.user_code,
      typed: hidden(approvePage, 'typed'),
    });
    expect(approved).toContain('approved');

    // exchange on C (respecting the polling interval), then the key works on A
    await sleep(login.interval * 1000 + 100);
    const exchanged = await api(C, 'POST', `/v1/cli/logins/${login.login_id}/exchange`, undefined, {
      code_verifier: verifier,
    });
    expect(exchanged.status).toBe(200);
    const result = await json<CliLoginExchangeResult>(exchanged);
    expect(result.user.email).toBe('ops@example.com');
    expect(result.key.created_via).toBe('cli_login');
    const me = await api(A, 'GET', '/v1/me', result.api_key);
    expect(me.status).toBe(200);
    expect((await json<MeResponse>(me)).auth.key_id).toBe(result.key.key_id);

    // and never twice, whichever instance is asked
    await sleep(login.interval * 1000 + 100);
    const replay = await api(B, 'POST', `/v1/cli/logins/${login.login_id}/exchange`, undefined, {
      code_verifier: verifier,
    });
    expect(replay.status).toBe(400);
    expect((await json<ErrorBody>(replay)).error.code).toBe('INVALID_GRANT');
  });
});

/** A cookie jar over fetch, for the HTML pages of one instance. */
class Browser {
  private readonly cookies = new Map<string, string>();
  constructor(private readonly instance: Instance) {}

  private remember(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair?.indexOf('=') ?? -1;
      if (!pair || eq < 0) continue;
      this.cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
  }

  private get cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async get(path: string): Promise<string> {
    const res = await fetch(`${this.instance.url}${path}`, {
      headers: { cookie: this.cookieHeader },
      redirect: 'manual',
    });
    this.remember(res);
    const text = await res.text();
    expect(res.status, `GET ${path}: ${text.slice(0, 300)}`).toBe(200);
    return text;
  }

  async post(path: string, form: Record<string, string>, status = 200): Promise<string> {
    const res = await fetch(`${this.instance.url}${path}`, {
      method: 'POST',
      headers: {
        cookie: this.cookieHeader,
        'content-type': 'application/x-www-form-urlencoded',
        origin: this.instance.url,
      },
      body: new URLSearchParams(form).toString(),
      redirect: 'manual',
    });
    this.remember(res);
    const text = await res.text();
    expect(res.status, `POST ${path}: ${text.slice(0, 300)}`).toBe(status);
    return text;
  }
}

function hidden(page: string, name: string): string {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(page);
  if (!m?.[1]) throw new Error(`no hidden field "${name}" on the page`);
  return m[1];
}

function outboxFiles(i: Instance): string[] {
  const outbox = join(i.dataDir, 'outbox');
  return existsSync(outbox) ? readdirSync(outbox).filter((f) => f.endsWith('.eml')) : [];
}

/** The code in the first mail that reaches the instance's dev outbox and is not in `seen`. */
async function mailedCode(i: Instance, seen: string[]): Promise<string> {
  for (let tries = 0; tries < 100; tries++) {
    const fresh = outboxFiles(i).filter((f) => !seen.includes(f));
    const file = fresh.sort()[0];
    if (file) {
      const m = /Subject: Your Breeze code: ([0-9A-Z]{8})/.exec(
        readFileSync(join(i.dataDir, 'outbox', file), 'utf8'),
      );
      if (m?.[1]) return m[1];
    }
    await sleep(50);
  }
  throw new Error(`no code mail in ${i.name}'s outbox`);
}

describe.skipIf(skip)('instances without BREEZE_PEPPER', () => {
  test('hash alike: a key minted on one instance works on another with a different data dir', async () => {
    const pgs = await startPostgres();
    const root = mkdtempSync('/tmp/breeze-nopepper-');
    const instances: Instance[] = [];
    try {
      const url = await pgs.createDatabase(uniqueDbName('nopepper'));
      instances.push(await startInstance('d', 'cli', url, root, null));
      instances.push(await startInstance('e', 'cli', url, root, null));
      const [D, E] = instances as [Instance, Instance];
      expect(D.output()).toContain('BREEZE_PEPPER is not set');
      // sign up on D through the email-code flow; the code arrives in D's dev outbox
      const started = await api(D, 'POST', '/auth/code', undefined, {
        email: 'np@example.com',
        type: 'api_key',
      });
      expect(started.status).toBe(201);
      const { id } = await json<{ id: string }>(started);
      const outbox = join(D.dataDir, 'outbox');
      let code: string | undefined;
      for (let i = 0; i < 100 && !code; i++) {
        const files = existsSync(outbox) ? readdirSync(outbox).filter((f) => f.endsWith('.eml')) : [];
        const mail = files[0] ? readFileSync(join(outbox, files[0]), 'utf8') : '';
        code = /Your Breeze code: ([0-9A-Z]{8})/.exec(mail)?.[1];
        if (!code) await sleep(50);
      }
      expect(code).toBeDefined();
      const verified = await api(D, 'POST', `/auth/code/${id}/verifications`, undefined, { code });
      expect(verified.status).toBe(200);
      const { secret } = await json<{ secret: string }>(verified);
      const me = await api(E, 'GET', '/v1/me', secret);
      expect(me.status).toBe(200);
      expect((await json<MeResponse>(me)).user.email).toBe('np@example.com');
      // no pepper: each instance signs with JWT keys of its own, encrypted under a secret in its
      // data dir, and every instance publishes (and accepts) all of them
      const started2 = await api(D, 'POST', '/auth/code', undefined, {
        email: 'np@example.com',
        type: 'jwt',
      });
      expect(started2.status).toBe(201);
      const { id: id2 } = await json<{ id: string }>(started2);
      let code2: string | undefined;
      for (let i = 0; i < 100 && !code2; i++) {
        const files = readdirSync(outbox)
          .filter((f) => f.endsWith('.eml'))
          .sort();
        const mails = files.map((f) => readFileSync(join(outbox, f), 'utf8'));
        code2 = mails
          .map((m) => /Your Breeze code: ([0-9A-Z]{8})/.exec(m)?.[1])
          .find((c) => c !== undefined && c !== code);
        if (!code2) await sleep(50);
      }
      const jwtDone = await api(D, 'POST', `/auth/code/${id2}/verifications`, undefined, { code: code2 });
      expect(jwtDone.status).toBe(200);
      const { token } = await json<{ token: string }>(jwtDone);
      expect(token.split('.')).toHaveLength(3);
      const viaE = await fetch(`${E.url}/v1/me`, { headers: { authorization: `Bearer ${token}` } });
      expect(viaE.status).toBe(200);
      expect((await json<MeResponse>(viaE)).user.email).toBe('np@example.com');
      const { kid } = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()) as {
        kid: string;
      };
      const jwks = await json<{ keys: { kid: string }[] }>(await api(E, 'GET', '/.well-known/jwks.json'));
      expect(jwks.keys.map((k) => k.kid)).toContain(kid);
      // both instances created a key; none is stored in the clear
      const check = await openStore({ databaseUrl: url });
      const rows = await check.db.selectFrom('signing_keys').selectAll().execute();
      await check.close();
      expect(rows.length).toBeGreaterThanOrEqual(2);
      for (const r of rows) expect(r.private_jwk).toMatch(/^enc:i1:/);
      for (const i of [D, E]) expect(statSync(join(i.dataDir, 'instance-secret')).mode & 0o777).toBe(0o600);
      // an instance restarted over its data dir keeps signing with its own key
      await stopInstance(E);
      instances[1] = await startInstance('e', 'cli', url, root, null);
      const E2 = instances[1] as Instance;
      expect((await fetch(`${E2.url}/v1/me`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(
        200,
      );
      const after = await openStore({ databaseUrl: url });
      expect(await after.db.selectFrom('signing_keys').selectAll().execute()).toHaveLength(rows.length);
      await after.close();
    } finally {
      await Promise.all(instances.map(stopInstance));
      await pgs.stop();
      rmSync(root, { recursive: true, force: true });
    }
  }, 90_000);
});
