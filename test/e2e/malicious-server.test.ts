/**
 * The CLI distrusts the server (issue 10, items 5, 8 and 9): the built CLI against a FAKE, malicious
 * HTTP server on 127.0.0.1 that answers with terminal escape sequences, forged lines, keys that are
 * shell commands, ids with quotes, timers that overflow and phishing links. What the user would see
 * (stdout and stderr bytes) and what ends up on disk is checked.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../src/core/api-key.js';
import {
  type CliResult,
  cliEnv,
  collect,
  runCli,
  spawnCli,
  tempConfigDir,
  waitForOutput,
} from '../helpers/cli.js';
import {
  apiError,
  expectTerminalSafe,
  type FakeServer,
  type Handler,
  type Seen,
  startFakeServer,
} from '../helpers/fake-server.js';

/** The fake server's routes, set per test. */
let fake: FakeServer;
let url = '';
let routes: Record<string, Handler> = {};
let seen: Seen[] = [];

/** No line that forges a table row or a success line. */
function expectNoForgedLines(r: CliResult, allowedSuccess = 0): void {
  const lines = `${r.stdout}${r.stderr}`.split('\n');
  expect(lines.filter((l) => l.startsWith('key_01FAKE'))).toEqual([]);
  expect(lines.filter((l) => l.startsWith('✓')).length).toBeLessThanOrEqual(allowedSuccess);
}

const EVIL = {
  title: '\x1b]0;pwned\x07',
  clear: '\x1b[2J\x1b[H',
  osc8: '\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\',
  row: 'x\nkey_01FAKEFAKEFAKEFAKEFAKEFAK  stolen  brz_AAAAAAAA  read,write,admin  active',
  cr: 'innocent\r✓ Logged in as admin@example.com',
  success: 'y\n✓ Logged in as admin@example.com',
  c1: '\u009b2J\u0085',
  bidi: 'abc\u202Etxt.exe\u2066',
  zw: 'ad\u200bmin\ufeff',
  del: 'del\x7f',
};
const EVIL_ALL = Object.values(EVIL).join(' ');

function keyObject(apiKey: string, overrides: Record<string, unknown> = {}) {
  return {
    key_id: `key_01J${Math.random().toString(36).slice(2, 12).toUpperCase().padEnd(23, '0')}`.slice(0, 30),
    name: 'plain',
    prefix: apiKey.slice(0, 12),
    scopes: ['read', 'write', 'admin'],
    status: 'active',
    created_at: '2026-01-01T00:00:00.000Z',
    expires_at: null,
    last_used_at: null,
    disabled_at: null,
    rotated_from: null,
    created_via: 'api',
    ...overrides,
  };
}

const USER = { id: 'usr_01JFAKEUSER0000000000000', email: 'me@example.com' };
const KEY = generateApiKey();
const NO_KEYCHAIN = { BREEZE_STORAGE: 'file', DBUS_SESSION_BUS_ADDRESS: undefined };

let cfg: ReturnType<typeof tempConfigDir> = { dir: '', cleanup: () => {} };
const cfgs: Array<ReturnType<typeof tempConfigDir>> = [];
/** A fresh config dir, also made the current `cfg`; all are removed after each test. */
function freshConfig(): ReturnType<typeof tempConfigDir> {
  cfg = tempConfigDir();
  cfgs.push(cfg);
  return cfg;
}
beforeAll(async () => {
  fake = await startFakeServer({ routes: () => routes, seen: (s) => seen.push(s) });
  url = fake.url;
});
afterAll(() => fake.close());
afterEach(() => {
  routes = {};
  seen = [];
  for (const c of cfgs.splice(0)) c.cleanup();
});

/** `breeze --server <fake> args...` with BREEZE_API_KEY set to a well-formed key (unless `env` says otherwise). */
function breeze(args: string[], env: Record<string, string | undefined> = {}, input?: string) {
  freshConfig();
  return runCli(['--server', url, ...args], {
    configDir: cfg.dir,
    env: { BREEZE_API_KEY: KEY, ...NO_KEYCHAIN, ...env },
    input,
    timeoutMs: 20_000,
  });
}

function nothingStored(): void {
  expect(existsSync(join(cfg.dir, 'credentials.json')), 'credentials.json was written').toBe(false);
  expect(existsSync(join(cfg.dir, 'config.json')), 'config.json was written').toBe(false);
}

describe('item 5: nothing from outside drives the terminal', () => {
  it('keys list: names with escapes, links, CR, C1, bidi and newlines are shown escaped, one row each', async () => {
    const names = Object.values(EVIL);
    routes['GET /v1/api-keys'] = () => ({
      status: 200,
      body: { data: names.map((name) => keyObject(KEY, { name })), next_cursor: null },
    });
    const r = await breeze(['keys', 'list']);
    expect(r.code, r.stderr).toBe(0);
    expectTerminalSafe(r);
    expectNoForgedLines(r);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1 + names.length);
    expect(r.stdout).toContain('\\x1B]0;pwned\\x07');
    expect(r.stdout).toContain('abc\\u{202E}txt.exe');

    const json = await breeze(['--json', 'keys', 'list']);
    expect(json.code, json.stderr).toBe(0);
    expectTerminalSafe(json);
    expect((JSON.parse(json.stdout) as { data: { name: string }[] }).data.map((k) => k.name)).toEqual(names);
  });

  it('status: a value from the server cannot add a line; a bad email is refused, not shown', async () => {
    routes['GET /v1/me'] = () => ({
      status: 200,
      body: { user: USER, auth: { type: 'api_key', key_id: 'key_01JSTATUS', scopes: ['read'] } },
    });
    routes['GET /v1/api-keys/*'] = () => ({
      status: 200,
      body: keyObject(KEY, { key_id: 'key_01JSTATUS', expires_at: `${EVIL.success} ${EVIL.clear}` }),
    });
    const r = await breeze(['status']);
    expect(r.code, r.stderr).toBe(0);
    expectTerminalSafe(r);
    expectNoForgedLines(r);
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(7);

    routes['GET /v1/me'] = () => ({
      status: 200,
      body: { user: { ...USER, email: `a@b.c${EVIL.success}` }, auth: { type: 'api_key', scopes: [] } },
    });
    const bad = await breeze(['status']);
    expect(bad.code).toBe(1);
    expectTerminalSafe(bad);
    expectNoForgedLines(bad);
    expect(bad.stderr).toMatch(/user\.email is not an email address/);
  });

  it('an error body’s message, code and request id are one escaped line', async () => {
    routes['POST /v1/api-keys/*'] = () => ({
      status: 403,
      body: apiError('FORBIDDEN', `${EVIL.clear}${EVIL.row}${EVIL.success}${EVIL_ALL}`, 403, {
        request_id: `req_${EVIL.title}\n✓ done`,
      }),
    });
    const r = await breeze(['keys', 'disable', 'key_01JTARGET']);
    expect(r.code).toBe(4);
    expectTerminalSafe(r);
    expectNoForgedLines(r);
    expect(r.stderr).toContain('\\x1B[2J');
  });

  it('keys create / enable / rotate: names and dates from the server are escaped in every message', async () => {
    routes['POST /v1/api-keys'] = () => ({
      status: 201,
      body: { ...keyObject(KEY, { name: EVIL_ALL }), api_key: KEY },
    });
    const created = await breeze(['keys', 'create', '--name', 'x']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toBe(`${KEY}\n`);
    expectTerminalSafe(created);
    expectNoForgedLines(created);
    const createdJson = await breeze(['--json', 'keys', 'create', '--name', 'x']);
    expectTerminalSafe(createdJson);
    expect(JSON.parse(createdJson.stdout).name).toBe(EVIL_ALL);

    routes['POST /v1/api-keys/*'] = () => ({ status: 200, body: keyObject(KEY, { name: EVIL_ALL }) });
    const enabled = await breeze(['keys', 'enable', 'key_01JTARGET']);
    expect(enabled.code, enabled.stderr).toBe(0);
    expectTerminalSafe(enabled);
    expectNoForgedLines(enabled, 1);
    expect(enabled.stderr.split('\n').filter((l) => l.startsWith('✓'))).toHaveLength(1);

    const next = generateApiKey();
    routes['POST /v1/api-keys/*'] = () => ({
      status: 201,
      body: {
        ...keyObject(next),
        api_key: next,
        previous: keyObject(KEY, { expires_at: `2099-01-01${EVIL.success}${EVIL.cr}` }),
      },
    });
    const rotated = await breeze(['keys', 'rotate', 'key_01JTARGET']);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stdout).toBe(`${next}\n`);
    expectTerminalSafe(rotated);
    expectNoForgedLines(rotated);
  });

  it('keys rotate: a previous key without a usable expires_at is not said to work "until null"', async () => {
    for (const expires_at of [null, undefined, 'soon']) {
      const next = generateApiKey();
      routes['POST /v1/api-keys/*'] = () => ({
        status: 201,
        body: { ...keyObject(next), api_key: next, previous: keyObject(KEY, { expires_at }) },
      });
      const r = await breeze(['keys', 'rotate', 'key_01JTARGET']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(/until (null|undefined|soon)/);
      expect(r.stderr).toMatch(/the server did not say until when/);
    }
  });

  it('an outside value echoed in an error (BREEZE_SERVER, BREEZE_PROFILE) is escaped', async () => {
    freshConfig();
    const r = await runCli(['status'], {
      configDir: cfg.dir,
      env: { BREEZE_SERVER: `ftp://x/${EVIL.title}${EVIL.success}`, ...NO_KEYCHAIN },
    });
    expect(r.code).toBe(2);
    expectTerminalSafe(r);
    expectNoForgedLines(r);
    const p = await runCli(['status'], { configDir: cfg.dir, env: { BREEZE_PROFILE: `a${EVIL.clear}\nb` } });
    expect(p.code).toBe(2);
    expectTerminalSafe(p);
  });
});

/** Routes of a device-mode login whose start answer is `start` (merged over a sane one). */
function loginRoutes(start: Record<string, unknown>, exchange: Handler): void {
  routes['POST /v1/cli/logins'] = () => ({
    status: 201,
    body: {
      login_id: 'login_fake0123456789',
      user_code: 'BCDF-GHJK',
      verification_uri: `${url}/device`,
      verification_uri_complete: `${url}/device?user_code=BCDF-GHJK`,
      expires_in: 600,
      interval: 1,
      ...start,
    },
  });
  routes['POST /v1/cli/logins/*'] = exchange;
}

const pending: Handler = () => ({
  status: 400,
  body: apiError('AUTHORIZATION_PENDING', 'Not approved yet.', 400),
});
const exchanges = () => seen.filter((s) => s.path.endsWith('/exchange')).length;

describe('item 8: values from the server are validated and bounded', () => {
  it('login: a user code with escapes is refused', async () => {
    loginRoutes({ user_code: `${EVIL.clear}BCDF-GHJK` }, pending);
    const r = await breeze(['login', '--no-browser'], { BREEZE_API_KEY: undefined });
    expect(r.code).toBe(1);
    expectTerminalSafe(r);
    expect(r.stderr).toMatch(/user_code/);
    nothingStored();
  });

  it.each([
    ['an api_key that is a shell command', { api_key: "brz_'$(touch /tmp/breeze-pwned)'\n`id`" }],
    ['an api_key with a bad checksum', { api_key: `${KEY.slice(0, -1)}${KEY.endsWith('A') ? 'B' : 'A'}` }],
    ['a key id with quotes and a newline', { key: keyObject(KEY, { key_id: 'key_"; rm -rf ~\n"' }) }],
    ['a prefix that is not the key’s', { key: keyObject(KEY, { prefix: 'brz_AAAAAAAA' }) }],
    ['an email with a newline', { user: { ...USER, email: 'a@b.c\n✓ Logged in as root' } }],
    ['a user id with a slash', { user: { ...USER, id: '../../etc' } }],
  ])('login exchange: %s is never stored', async (_name, override) => {
    loginRoutes({}, () => ({
      status: 200,
      body: { api_key: KEY, key: keyObject(KEY), user: USER, ...override },
    }));
    const r = await breeze(['login', '--no-browser'], { BREEZE_API_KEY: undefined });
    expect(r.code, r.stderr).toBe(1);
    expectTerminalSafe(r);
    expectNoForgedLines(r);
    expect(r.stderr).toMatch(/Unexpected response from the server|cannot be stored/);
    expect(r.stdout).toBe('');
    nothingStored();
  });

  it('login exchange: a sane answer is stored (the fake server is good enough for a real login)', async () => {
    loginRoutes({}, () => ({ status: 200, body: { api_key: KEY, key: keyObject(KEY), user: USER } }));
    const r = await breeze(['login', '--no-browser'], { BREEZE_API_KEY: undefined });
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(cfg.dir, 'credentials.json'), 'utf8')).toContain(KEY);
  });

  it('email-code login: a malformed secret or code id is never stored', async () => {
    routes['POST /auth/code'] = () => ({ status: 201, body: { id: 'code_fake01' } });
    routes['POST /auth/code/*'] = () => ({
      status: 200,
      body: { secret: 'brz_$(reboot)`id`', key_id: 'key_1' },
    });
    freshConfig();
    const env = { ...NO_KEYCHAIN };
    const first = await runCli(['--server', url, 'login', '--email', 'me@example.com'], {
      configDir: cfg.dir,
      env,
    });
    expect(first.code, first.stderr).toBe(2);
    const r = await runCli(['--server', url, 'login', '--email', 'me@example.com', '--code', 'ABCD2345'], {
      configDir: cfg.dir,
      env,
    });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/secret is not a well-formed Breeze API key/);
    expect(existsSync(join(cfg.dir, 'credentials.json'))).toBe(false);
    expect(existsSync(join(cfg.dir, 'config.json'))).toBe(false);

    routes['POST /auth/code'] = () => ({ status: 201, body: { id: '../../v1/api-keys' } });
    const badId = await breeze(['login', '--email', 'me@example.com'], { BREEZE_API_KEY: undefined });
    expect(badId.code).toBe(1);
    expect(badId.stderr).toMatch(/id is not a well-formed id/);
  });

  it('keys create / rotate: a malformed api_key is neither printed nor saved', async () => {
    const evilKey = "brz_'$(touch /tmp/breeze-pwned)'\n`id`";
    routes['POST /v1/api-keys'] = () => ({ status: 201, body: { ...keyObject(KEY), api_key: evilKey } });
    routes['GET /v1/me'] = () => ({
      status: 200,
      body: { user: USER, auth: { type: 'api_key', key_id: 'key_01JME', scopes: ['read'] } },
    });
    for (const args of [
      ['keys', 'create', '--name', 'x'],
      ['--json', 'keys', 'create', '--name', 'x'],
    ]) {
      const created = await breeze(args);
      expect(created.code, args.join(' ')).toBe(1);
      // nothing but, with --json, the error document (CLI.md: failures are JSON on stdout too)
      if (args.includes('--json')) {
        expect(JSON.parse(created.stdout).error.code).toBe('UNEXPECTED_RESPONSE');
        expect(created.stdout).not.toContain('touch');
      } else expect(created.stdout).toBe('');
      expect(created.stderr).not.toContain('touch');
      expect(created.stderr).toMatch(/api_key is not a well-formed Breeze API key/);
      expectTerminalSafe(created);
    }
    const saved = await breeze(['keys', 'create', '--name', 'x', '--save']);
    expect(saved.code).toBe(1);
    nothingStored();
    routes['POST /v1/api-keys/*'] = () => ({
      status: 201,
      body: { ...keyObject(KEY), api_key: evilKey, previous: keyObject(KEY) },
    });
    const rotated = await breeze(['--json', 'keys', 'rotate', 'key_01JTARGET']);
    expect(rotated.code).toBe(1);
    // with --json, only the error document is on stdout, and it holds nothing of the value
    expect(JSON.parse(rotated.stdout).error.code).toBe('UNEXPECTED_RESPONSE');
    expect(rotated.stdout).not.toContain('touch');
    expect(rotated.stderr).toMatch(/api_key is not a well-formed Breeze API key/);
  });

  it('login --with-key: input that is not a Breeze key never reaches the server or the disk', async () => {
    const r = await breeze(['login', '--with-key'], { BREEZE_API_KEY: undefined }, "brz_'$(id)'\n");
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/not a Breeze API key/);
    expect(seen).toEqual([]);
    nothingStored();
  });

  /** Device login that polls a server answering "pending" forever; stopped with SIGINT after `ms`. */
  async function pollFor(ms: number): Promise<CliResult> {
    freshConfig();
    const child = spawnCli(['--server', url, 'login', '--no-browser'], {
      configDir: cfg.dir,
      env: NO_KEYCHAIN,
    });
    const done = collect(child, { timeoutMs: 20_000 });
    await waitForOutput(child, /BCDF-GHJK/);
    await new Promise((r) => setTimeout(r, ms));
    child.kill('SIGINT');
    return done;
  }

  it('interval 3000000 (a setTimeout overflow) does not become a busy loop; expires_in is capped at 600 s', async () => {
    loginRoutes({ interval: 3_000_000, expires_in: 23 * 86400 }, pending);
    const r = await pollFor(3000);
    expect(r.code).toBe(130);
    // clamped to 60 s: the first exchange at once, none in the next 3 s (unbounded: thousands)
    expect(exchanges()).toBe(1);
    expect(r.stderr).toMatch(/expires in 10 minutes/);
  });

  it('SLOW_DOWN with a huge interval and a negative start interval stay bounded', async () => {
    let n = 0;
    loginRoutes({ interval: -5, expires_in: 0 }, () =>
      ++n === 1
        ? pending({} as Seen)
        : { status: 400, body: apiError('SLOW_DOWN', 'slow', 400, { details: { interval: 1e12 } }) },
    );
    const r = await pollFor(3500);
    expect(r.code).toBe(130);
    // 1 s floor: pending at once, SLOW_DOWN a second later, then a 60 s wait
    expect(exchanges()).toBeGreaterThanOrEqual(2);
    expect(exchanges()).toBeLessThanOrEqual(3);
    // expires_in 0 is raised to the 60 s floor: the CLI was still waiting when interrupted
    expect(r.stderr).toMatch(/expires in 1 minute\b/);
    expect(r.stderr).not.toMatch(/expired/);
  });

  it('device mode: verification URLs off the server’s origin are not printed; its own /device is', async () => {
    loginRoutes(
      {
        verification_uri: 'https://evil.example/device',
        verification_uri_complete: 'javascript:alert(1)',
      },
      pending,
    );
    const r = await pollFor(300);
    expect(r.stderr).not.toContain('evil.example');
    expect(r.stderr).not.toContain('javascript:');
    expect(r.stderr).toContain(`${url}/device`);
    expect(r.stderr).toMatch(/Warning: The server sent a login link that is not an http\(s\) address on/);
  });

  describe('browser mode: only an http(s) URL on the server’s origin is opened', () => {
    const opened = () => {
      const f = join(cfg.dir, '..', 'opened.txt');
      return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n') : [];
    };
    it.each([
      ['file://', () => 'file:///nonexistent-breeze-test/passwd'],
      ['another origin', () => 'https://evil.example/device?user_code=BCDF-GHJK'],
      // (the fake server's URL is known only once it listens)
      ['the same host, another port', () => `${url.replace(/:\d+$/, ':1')}/device`],
      ['credentials in the URL', () => `${url.replace('http://', 'http://accounts.example.com@')}/device`],
    ])('%s: the server’s own /device page is opened instead', async (_name, makeLink) => {
      const link = makeLink();
      loginRoutes({ verification_uri_complete: link }, pending);
      freshConfig();
      const parent = join(cfg.dir, '..');
      const empty = join(parent, 'empty');
      mkdirSync(empty, { recursive: true });
      const recorder = join(parent, 'browser.sh');
      writeFileSync(recorder, `#!/bin/sh\nprintf '%s\\n' "$@" >> '${join(parent, 'opened.txt')}'\n`);
      chmodSync(recorder, 0o755);
      // xdg-open with no desktop and no MIME defaults falls back to $BROWSER: our recorder
      const env = {
        ...NO_KEYCHAIN,
        DISPLAY: ':99',
        BROWSER: recorder,
        XDG_CURRENT_DESKTOP: undefined,
        DESKTOP_SESSION: undefined,
        XDG_DATA_DIRS: empty,
        XDG_CONFIG_DIRS: empty,
        XDG_DATA_HOME: empty,
        XDG_CONFIG_HOME: empty,
        SSH_CONNECTION: undefined,
        SSH_TTY: undefined,
        SSH_CLIENT: undefined,
      };
      const child = spawnCli(['--server', url, 'login'], { configDir: cfg.dir, env });
      const done = collect(child, { timeoutMs: 20_000 });
      await waitForOutput(child, /Your code/);
      await expect.poll(opened, { timeout: 10_000 }).toEqual([`${url}/device`]);
      child.kill('SIGINT');
      const r = await done;
      expect(r.stderr).not.toContain(link);
      expect(r.stderr).toMatch(/Warning: The server sent a login link/);
      expectTerminalSafe(r);
    });
  });

  describe('env and token: what is emitted for a shell is a well-formed key, quoted', () => {
    const EVIL_STORED = "brz_'$(touch PWNED)'`touch PWNED`\"\n$(touch PWNED)";
    function storeRaw(value: string): void {
      freshConfig();
      mkdirSync(cfg.dir, { recursive: true, mode: 0o700 });
      writeFileSync(
        join(cfg.dir, 'config.json'),
        JSON.stringify({
          version: 1,
          profiles: {
            default: { server: url, key_id: 'key_01J', prefix: 'brz_x', email: 'a@b.c', storage: 'file' },
          },
        }),
      );
      writeFileSync(
        join(cfg.dir, 'credentials.json'),
        JSON.stringify({ version: 1, credentials: { [`default@${url}`]: value } }),
        { mode: 0o600 },
      );
    }

    it.each(['sh', 'fish', 'powershell', 'dotenv', 'json'])(
      'env --format %s refuses a stored value that is not a well-formed key',
      async (format) => {
        storeRaw(EVIL_STORED);
        const r = await runCli(['env', '--format', format], { configDir: cfg.dir, env: NO_KEYCHAIN });
        expect(r.code).toBe(3);
        expect(r.stdout).toBe('');
        expect(r.stderr).toMatch(/not a well-formed Breeze API key/);
        expect(r.stderr).not.toContain('touch');
      },
    );

    it('token and run refuse it too; BREEZE_API_KEY that is not a key is refused as well', async () => {
      storeRaw(EVIL_STORED);
      for (const args of [['token'], ['--json', 'token'], ['run', '--', 'true']]) {
        const r = await runCli(args, { configDir: cfg.dir, env: NO_KEYCHAIN });
        expect(r.code, args.join(' ')).toBe(3);
        if (args.includes('--json')) {
          expect(JSON.parse(r.stdout).error.code).toBe('NOT_AUTHENTICATED');
          expect(r.stdout).not.toContain('$(');
        } else expect(r.stdout).toBe('');
      }
      const r = await runCli(['env'], {
        configDir: cfg.dir,
        env: { ...NO_KEYCHAIN, BREEZE_API_KEY: "x'$(id)" },
      });
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/BREEZE_API_KEY is not a Breeze key \(malformed\)/);
      expect(r.stdout + r.stderr).not.toContain('$(id)');
    });

    it('a BREEZE_API_KEY_ID that is not an id is left out, not emitted into a shell', async () => {
      freshConfig();
      const r = await runCli(['env', '--format', 'dotenv'], {
        configDir: cfg.dir,
        env: { ...NO_KEYCHAIN, BREEZE_API_KEY: KEY, BREEZE_API_KEY_ID: "x'`touch PWNED`$(touch PWNED)" },
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`BREEZE_API_KEY='${KEY}'\n`);
      expect(r.stderr).toMatch(/BREEZE_API_KEY_ID is left out/);
    });

    it('dotenv sourced by sh runs nothing, even with quotes and $() in the server URL', async () => {
      const server = `${url}/'$(touch PWNED)'`;
      storeRaw(KEY);
      const r = await runCli(['--server', server, 'env', '--format', 'dotenv'], {
        configDir: cfg.dir,
        env: { ...NO_KEYCHAIN, BREEZE_API_KEY: KEY },
      });
      expect(r.code, r.stderr).toBe(0);
      writeFileSync(join(cfg.dir, '.env'), r.stdout);
      const out = execFileSync('sh', ['-c', '. ./.env && printf %s "$BREEZE_SERVER"'], {
        cwd: cfg.dir,
        env: cliEnv(undefined),
        encoding: 'utf8',
      });
      expect(existsSync(join(cfg.dir, 'PWNED'))).toBe(false);
      expect(out).toBe(new URL(server).href);
    });
  });
});

describe('item 9: --verbose shows neither the loopback state nor the loopback code', () => {
  it('browser login with --verbose: the trace redacts state and code', async () => {
    let state = '';
    let redirect = '';
    routes['POST /v1/cli/logins'] = (req) => {
      state = String(req.body?.state);
      redirect = String(req.body?.redirect_uri);
      return {
        status: 201,
        body: {
          login_id: 'login_fake0123456789',
          user_code: 'BCDF-GHJK',
          verification_uri: `${url}/device`,
          verification_uri_complete: `${url}/device?user_code=BCDF-GHJK`,
          expires_in: 600,
          interval: 1,
        },
      };
    };
    routes['POST /v1/cli/logins/*'] = () => ({
      status: 200,
      body: { api_key: KEY, key: keyObject(KEY), user: USER },
    });
    freshConfig();
    const child = spawnCli(['--server', url, '--verbose', 'login'], {
      configDir: cfg.dir,
      env: { ...NO_KEYCHAIN, BREEZE_BROWSER: 'none' },
    });
    const done = collect(child, { timeoutMs: 20_000 });
    await waitForOutput(child, /Your code/);
    expect(state.length).toBeGreaterThan(10);
    const code = 'LOOPBACKCODE0123456789';
    const tab = await fetch(`${redirect}?code=${code}&state=${encodeURIComponent(state)}`);
    expect(tab.status).toBe(200);
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('> POST');
    expect(r.stderr).not.toContain(state);
    expect(r.stderr).not.toContain(code);
    expect(r.stderr).not.toContain(KEY.slice(12));
    expect(seen.find((s) => s.path.endsWith('/exchange'))?.body?.code).toBe(code);
  });
});
