import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CliResult,
  cliEnv,
  collect,
  runCli,
  seedKeyInDataDir,
  spawnCli,
  waitForOutput,
} from '../helpers/cli.js';
import { requirePart } from '../helpers/require.js';
import {
  browserSignInDetailed,
  form,
  inputValue,
  latestCode,
  type RawResponse,
  rawRequest,
  typeUserCode,
} from './raw-http.js';
import { attach, BIN, distReady, ROOT, type ServerProcess } from './server-process.js';

/**
 * Leaks: run every flow end to end against a real `breeze serve` process and the built CLI (keys
 * create/rotate, email-code login, browser login with the loopback redirect, device login, JWTs, a
 * hand-driven PKCE login with a known verifier, logout, the embedded server, `--verbose` on all of
 * it, and error paths fed with real secrets), collecting every secret issued. Then search the
 * SQLite files (db, WAL, shm) of both servers, the server's stdout/stderr, every CLI stderr (the
 * `--verbose` traces included), the config dir (except credentials.json, which holds keys by
 * design, and the dev outbox .eml files, which carry the mailed code by API.md) and every error
 * body: zero hits.
 */
const cliBuilt = existsSync(resolve(ROOT, 'dist/cli/main.js'));
const skip = requirePart('dist build', distReady && cliBuilt, 'dist/ is missing (the build failed?)');

type Kind = 'api key' | 'email code' | 'user code' | 'loopback code' | 'session token' | 'jwt' | 'verifier';
interface Secret {
  kind: Kind;
  value: string;
  /** where it came from, for the report */
  from: string;
}

/** The pieces of a secret worth searching for: whole, and the parts nobody may see. */
function needles(s: Secret): string[] {
  switch (s.kind) {
    case 'api key':
      // the 12-character prefix is public by design; the rest is not
      return [s.value, s.value.slice(12), s.value.slice(14, 34)];
    case 'jwt': {
      const [, payload, signature] = s.value.split('.');
      return [s.value, signature!, `${payload}.${signature}`];
    }
    case 'user code':
      return [s.value, s.value.replace('-', '')];
    case 'session token':
    case 'verifier':
      return [s.value, s.value.slice(8, 32)];
    default:
      return [s.value];
  }
}

describe.skipIf(skip)('no secret leaks anywhere after every flow', () => {
  const root = mkdtempSync(join(tmpdir(), 'breeze-leaks-'));
  const dataDir = join(root, 'server-data');
  const configDir = join(root, 'config');
  const secrets: Secret[] = [];
  /** text that must hold no secret: CLI stderr, chosen stdouts, error bodies */
  const transcripts: Array<{ where: string; text: string }> = [];
  let serve: ServerProcess;
  let url = '';

  const add = (kind: Kind, value: string | undefined, from: string) => {
    expect(value, `${kind} from ${from}`).toBeTruthy();
    secrets.push({ kind, value: value!, from });
  };

  /** Runs the CLI; its stderr always goes into the haystack, its stdout when `stdoutIsSecretFree`. */
  async function cli(
    args: string[],
    opts: {
      input?: string;
      env?: Record<string, string | undefined>;
      stdoutIsSecretFree?: boolean;
      expect?: number;
    } = {},
  ): Promise<CliResult> {
    const r = await runCli(args, {
      configDir,
      input: opts.input,
      env: { BREEZE_STORAGE: 'file', ...opts.env },
      timeoutMs: 60_000,
    });
    const where = `breeze ${args.join(' ')}`;
    transcripts.push({ where: `${where} (stderr)`, text: r.stderr });
    if (opts.stdoutIsSecretFree) transcripts.push({ where: `${where} (stdout)`, text: r.stdout });
    expect(r.code, `${where}: ${r.stderr}`).toBe(opts.expect ?? 0);
    return r;
  }

  const api = async (
    path: string,
    init: { method?: string; headers?: Record<string, string>; body?: unknown } = {},
  ) => {
    const res = await rawRequest(url, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      path,
      headers: {
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...init.headers,
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
    if (res.status >= 400)
      transcripts.push({ where: `error body of ${path}`, text: res.body.toString('utf8') });
    return { res, json: () => JSON.parse(res.body.toString('utf8')) };
  };

  async function waitForCode(dir: string, email: string): Promise<string> {
    for (let i = 0; i < 200; i++) {
      const c = latestCode(dir, email)?.code;
      if (c) return c;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`no code mailed to ${email}`);
  }

  /** Approves a pending login on the device page as a signed-in browser; returns the response. */
  async function approve(session: string, userCode: string): Promise<RawResponse> {
    const cookie = `breeze_session=${session}`;
    const page = await typeUserCode(url, cookie, userCode);
    expect(page.status).toBe(200);
    const html = page.body.toString('utf8');
    const fields: Record<string, string> = { csrf: inputValue(html, 'csrf')!, user_code: userCode };
    const typed = inputValue(html, 'typed');
    if (typed) fields.typed = typed;
    return rawRequest(url, {
      method: 'POST',
      path: '/device/approve',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: form(fields),
    });
  }

  beforeAll(async () => {
    const child = spawn(
      process.execPath,
      [BIN, 'serve', '--port', '0', '--data-dir', dataDir, '--rate-limit-per-key', '0'],
      { cwd: ROOT, env: cliEnv(configDir), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    serve = await attach(child, 30_000, (line) => {
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
      return m ? { url: m[1]! } : undefined;
    });
    url = serve.url;
  }, 60_000);

  afterAll(async () => {
    await serve?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('runs every flow, then finds none of the secrets issued in files, logs, traces or errors', async () => {
    const s = ['--server', url];
    const v = '--verbose';

    // -- a first key, and the CLI flows on it ----------------------------------------------------
    const seed = await seedKeyInDataDir(dataDir, { email: 'leak-admin@example.com' });
    add('api key', seed.apiKey, 'seeded');
    await cli([...s, v, 'login', '--with-key'], { input: `${seed.apiKey}\n`, stdoutIsSecretFree: true });
    const created = JSON.parse((await cli([...s, v, '--json', 'keys', 'create', '--name', 'leak-a'])).stdout);
    add('api key', created.api_key, 'keys create');
    const rotated = JSON.parse(
      (await cli([...s, v, '--json', 'keys', 'rotate', created.key_id, '--grace', '0'])).stdout,
    );
    add('api key', rotated.api_key, 'keys rotate <id>');
    const self = JSON.parse(
      (await cli([...s, v, '--json', 'keys', 'rotate', '--self', '--grace', '0'])).stdout,
    );
    add('api key', self.api_key, 'keys rotate --self');
    await cli([...s, v, 'keys', 'list', '--all'], { stdoutIsSecretFree: true });
    await cli([...s, v, 'status'], { stdoutIsSecretFree: true });
    await cli([...s, v, 'env'], { stdoutIsSecretFree: false });

    // -- email-code login through the CLI (two runs: mail, then --code) --------------------------
    const mailUser = 'leak-mail@example.com';
    await cli([...s, v, '--profile', 'mail', 'login', '--email', mailUser], {
      expect: 2,
      stdoutIsSecretFree: true,
    });
    const mailCode = await waitForCode(dataDir, mailUser);
    add('email code', mailCode, 'breeze login --email');
    await cli([...s, v, '--profile', 'mail', 'login', '--email', mailUser, '--code', mailCode], {
      stdoutIsSecretFree: true,
    });
    add('api key', (await cli([...s, '--profile', 'mail', 'token'])).stdout.trim(), 'login --email');

    // -- a browser signs in on the pages ---------------------------------------------------------
    const browser = await browserSignInDetailed(url, dataDir, 'leak-web@example.com');
    add('session token', browser.session, 'browser sign-in');
    add('email code', browser.code, 'browser sign-in');

    // -- browser login with the loopback redirect (breeze login, no browser launched) -----------
    const web = spawnCli([...s, v, '--profile', 'web', 'login'], {
      configDir,
      env: { BREEZE_BROWSER: 'none', BREEZE_STORAGE: 'file' },
    });
    const webDone = collect(web, { timeoutMs: 60_000 });
    const [, completeUrl] = (await waitForOutput(
      web,
      /(http:\/\/127\.0\.0\.1:\d+\/device\?user_code=[A-Z-]+)/,
    )) as string[];
    const webCode = new URL(completeUrl!).searchParams.get('user_code')!;
    add('user code', webCode, 'breeze login (loopback)');
    const approved = await approve(browser.session, webCode);
    expect(approved.status).toBe(303);
    const callback = new URL(approved.headers.location!);
    add('loopback code', callback.searchParams.get('code')!, 'approval redirect');
    const delivered = await rawRequest(callback.origin, { path: `${callback.pathname}${callback.search}` });
    expect(delivered.status).toBeLessThan(400);
    const webResult = await webDone;
    transcripts.push({
      where: 'breeze login (loopback) stderr',
      text: webResult.stderr.replaceAll(webCode, ''),
    });
    expect(webResult.code, webResult.stderr).toBe(0);
    add('api key', (await cli([...s, '--profile', 'web', 'token'])).stdout.trim(), 'login (loopback)');

    // -- device login (--no-browser), approved on the page ---------------------------------------
    const dev = spawnCli([...s, v, '--profile', 'dev', 'login', '--no-browser'], {
      configDir,
      env: { BREEZE_STORAGE: 'file' },
    });
    const devDone = collect(dev, { timeoutMs: 60_000 });
    const [devCode] = (await waitForOutput(dev, /[B-Z]{4}-[B-Z]{4}/)) as string[];
    add('user code', devCode!, 'breeze login --no-browser');
    expect((await approve(browser.session, devCode!)).status).toBe(200);
    const devResult = await devDone;
    // the user code is shown to the user on purpose: searched everywhere but in this stderr
    transcripts.push({
      where: 'breeze login --no-browser stderr',
      text: devResult.stderr.replaceAll(devCode!, ''),
    });
    expect(devResult.code, devResult.stderr).toBe(0);
    add('api key', (await cli([...s, '--profile', 'dev', 'token'])).stdout.trim(), 'login --no-browser');
    await cli([...s, v, '--profile', 'dev', 'logout'], { stdoutIsSecretFree: true });

    // -- email codes for a JWT and for a key, over the API ----------------------------------------
    const jwtUser = 'leak-jwt@example.com';
    const jwtStart = (await api('/auth/code', { body: { email: jwtUser, type: 'jwt' } })).json();
    const jwtCode = await waitForCode(dataDir, jwtUser);
    add('email code', jwtCode, 'POST /auth/code (jwt)');
    const jwt = (await api(`/auth/code/${jwtStart.id}/verifications`, { body: { code: jwtCode } })).json();
    add('jwt', jwt.token, 'verification (jwt)');
    expect((await api('/v1/me', { headers: { authorization: `Bearer ${jwt.token}` } })).res.status).toBe(200);
    const viaJwt = (
      await api('/v1/api-keys', {
        headers: { authorization: `Bearer ${jwt.token}` },
        body: { name: 'via jwt' },
      })
    ).json();
    add('api key', viaJwt.api_key, 'POST /v1/api-keys with a JWT');
    // replaying a used code, with the code in the body: the error must not echo it
    expect(
      (await api(`/auth/code/${jwtStart.id}/verifications`, { body: { code: jwtCode } })).res.status,
    ).toBe(404);

    const keyUser = 'leak-key@example.com';
    const keyStart = (await api('/auth/code', { body: { email: keyUser, type: 'api_key' } })).json();
    const keyCode = await waitForCode(dataDir, keyUser);
    add('email code', keyCode, 'POST /auth/code (api_key)');
    const wrongFirst = await api(`/auth/code/${keyStart.id}/verifications`, {
      body: { code: keyCode.split('').reverse().join('') },
    });
    expect([401, 200]).toContain(wrongFirst.res.status);
    const viaCode = (
      await api(`/auth/code/${keyStart.id}/verifications`, { body: { code: keyCode } })
    ).json();
    add('api key', viaCode.secret, 'verification (api_key)');

    // -- a PKCE login driven by hand, so the verifier is known ---------------------------------
    const verifier = randomBytes(48).toString('base64url');
    add('verifier', verifier, 'hand-driven CLI login');
    const state = randomBytes(16).toString('base64url');
    const started = (
      await api('/v1/cli/logins', {
        body: {
          code_challenge: createHash('sha256').update(verifier).digest('base64url'),
          code_challenge_method: 'S256',
          client_name: 'leak-test/1',
          hostname: 'leakhost',
          redirect_uri: 'http://127.0.0.1:9/callback',
          state,
        },
      })
    ).json();
    add('user code', started.user_code, 'POST /v1/cli/logins');
    const handApproved = await approve(browser.session, started.user_code);
    const handCode = new URL(handApproved.headers.location!).searchParams.get('code')!;
    add('loopback code', handCode, 'approval redirect (hand-driven)');
    // wrong code first (with the right verifier), then the real exchange, then a replay
    await api(`/v1/cli/logins/${started.login_id}/exchange`, {
      body: { code_verifier: verifier, code: `${handCode}x` },
    });
    const exchanged = (
      await api(`/v1/cli/logins/${started.login_id}/exchange`, {
        body: { code_verifier: verifier, code: handCode },
      })
    ).json();
    add('api key', exchanged.api_key, 'exchange (hand-driven)');
    const replay = await api(`/v1/cli/logins/${started.login_id}/exchange`, {
      body: { code_verifier: verifier, code: handCode },
    });
    expect(replay.res.status).toBe(400);

    // -- error paths fed with real secrets ------------------------------------------------------
    const disabled = await api(`/v1/api-keys/${viaJwt.key_id}/disable`, {
      headers: { authorization: `Bearer ${jwt.token}` },
      body: {},
    });
    expect(disabled.res.status).toBe(200);
    const refused = await cli([...s, v, 'status'], {
      env: { BREEZE_API_KEY: viaJwt.api_key },
      expect: 3,
      stdoutIsSecretFree: true,
    });
    expect(refused.stderr).toMatch(/refused|not valid|invalid|disabled|401/i);
    await cli([...s, v, '--profile', 'junk', 'login', '--with-key'], {
      input: `${viaCode.secret}x\n`,
      expect: 3,
      stdoutIsSecretFree: true,
    });
    await api('/v1/me', {
      headers: { 'xi-api-key': `${viaJwt.api_key}`, authorization: `Bearer ${jwt.token}x` },
    });
    await api('/v1/api-keys', {
      headers: { authorization: `Bearer ${jwt.token}x` },
      body: { name: viaCode.secret },
    });

    // -- the embedded server (the CLI's own, over <config dir>/server) --------------------------
    const embeddedData = join(configDir, 'server');
    const embSeed = await seedKeyInDataDir(embeddedData, { email: 'leak-embedded@example.com' });
    add('api key', embSeed.apiKey, 'seeded (embedded)');
    const emb = JSON.parse(
      (
        await cli(['--server', 'embedded', v, '--json', 'keys', 'create', '--name', 'emb'], {
          env: { BREEZE_API_KEY: embSeed.apiKey },
        })
      ).stdout,
    );
    add('api key', emb.api_key, 'keys create (embedded)');
    await cli(['--server', 'embedded', v, 'keys', 'list'], {
      env: { BREEZE_API_KEY: embSeed.apiKey },
      stdoutIsSecretFree: true,
    });

    const haystacks: Array<{ where: string; bytes: Buffer }> = [];
    /** files holding secrets by design: searched too, as a control that the search finds things */
    const control: Array<{ where: string; bytes: Buffer }> = [];
    const isOutboxMail = (rel: string) => /(^|\/)outbox\/.*\.eml$/.test(rel);
    const isExcluded = (rel: string) => rel === join('config', 'credentials.json') || isOutboxMail(rel);
    const walk = (dir: string, label: string) => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        const rel = relative(root, p);
        const st = statSync(p);
        if (st.isDirectory()) walk(p, label);
        else if (st.isSocket())
          continue; // the resident embedded server's socket holds no bytes
        else
          (isExcluded(rel) ? control : haystacks).push({ where: `${rel}${label}`, bytes: readFileSync(p) });
      }
    };
    // the live server's files, WAL included (a clean stop checkpoints it away), then after the stop
    walk(dataDir, ' (server running)');
    expect(haystacks.map((h) => h.where)).toContain(
      `${join('server-data', 'breeze.db-wal')} (server running)`,
    );
    // -- stop the server so every log line is out, then search ----------------------------------
    expect(await serve.stop()).toBe(0);
    // and the resident embedded server the embedded commands started: its log and database are searched too
    const stopResident = await runCli(['server', 'stop'], { configDir });
    expect(stopResident.code, stopResident.stderr).toBe(0);
    expect(stopResident.stderr).toMatch(/Stopped the background server/);
    walk(dataDir, ' (server stopped)');
    walk(configDir, '');
    haystacks.push({ where: 'breeze serve stdout+stderr', bytes: Buffer.from(serve.output()) });
    for (const t of transcripts) haystacks.push({ where: t.where, bytes: Buffer.from(t.text) });

    // the search can find things: sanity checks on what must be there
    const names = haystacks.map((h) => h.where);
    expect(names).toContain(`${join('server-data', 'breeze.db')} (server stopped)`);
    expect(names.some((n) => n.startsWith(join('config', 'server', 'breeze.db')))).toBe(true);
    expect(names).toContain(join('config', 'server', 'resident.log'));
    expect(names).toContain(join('config', 'config.json'));
    const serverLog = serve.output();
    expect(serverLog.length).toBeGreaterThan(2000);
    expect(serverLog).toContain('/v1/cli/logins');
    const verboseTrace = transcripts.map((t) => t.text).join('\n');
    expect(verboseTrace).toMatch(/> POST .*\/v1\/api-keys/);
    // the public prefix of a key is stored and shown; the search would see it
    expect(haystacks.some((h) => h.bytes.includes(created.api_key.slice(0, 12)))).toBe(true);

    const hits: string[] = [];
    let needleCount = 0;
    for (const secret of secrets) {
      for (const needle of needles(secret)) {
        needleCount++;
        for (const h of haystacks) {
          if (h.bytes.includes(needle)) hits.push(`${secret.kind} from ${secret.from} found in ${h.where}`);
        }
      }
    }
    // control: the same search finds every mailed code in the outbox and the file-stored keys in
    // credentials.json, where they belong
    const found = (value: string) => control.some((c) => c.bytes.includes(value));
    for (const sec of secrets.filter((x) => x.kind === 'email code'))
      expect(found(sec.value), sec.from).toBe(true);
    expect(found(self.api_key)).toBe(true);
    const bytes = haystacks.reduce((n, h) => n + h.bytes.length, 0);
    const byKind = new Map<string, number>();
    for (const sec of secrets) byKind.set(sec.kind, (byKind.get(sec.kind) ?? 0) + 1);
    console.log(
      `[leaks] ${secrets.length} secrets issued (${[...byKind].map(([k, n]) => `${n} ${k}`).join(', ')}), ` +
        `${needleCount} needles, searched ${haystacks.length} haystacks / ${(bytes / 1024).toFixed(0)} KiB: ` +
        `${hits.length} hits`,
    );
    expect(hits).toEqual([]);
  }, 180_000);
});
