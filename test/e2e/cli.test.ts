import { type ChildProcess, execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { type AddressInfo, createServer, connect as netConnect, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../src/core/api-key.js';
import {
  BIN,
  cliEnv,
  runCli,
  seedKeyInDataDir,
  spawnCli,
  tempConfigDir,
  waitForOutput,
} from '../helpers/cli.js';

// No D-Bus session in these runs: the keychain is unusable and the CLI must fall back to the file.
const NO_DBUS = { DBUS_SESSION_BUS_ADDRESS: undefined };

let tmp: ReturnType<typeof tempConfigDir>;
let serverProc: ChildProcess;
let url: string;
let dataDir: string;

async function startServe(dir: string, cfg: string): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawnCli(['serve', '--port', '0', '--data-dir', dir, '--rate-limit-per-key', '0'], {
    configDir: cfg,
  });
  proc.stdout?.resume();
  const m = await waitForOutput(proc, /listening on (http:\/\/127\.0\.0\.1:\d+)/);
  return { proc, url: m[1]! };
}

function stopped(proc: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve(proc.exitCode);
    proc.once('exit', (code) => resolve(code));
  });
}

beforeAll(async () => {
  tmp = tempConfigDir();
  dataDir = join(tmp.dir, '..', 'server-data');
  const s = await startServe(dataDir, join(tmp.dir, '..', 'serve-config'));
  serverProc = s.proc;
  url = s.url;
});

afterAll(async () => {
  serverProc?.kill('SIGTERM');
  if (serverProc) await stopped(serverProc);
  tmp?.cleanup();
});

/** a fresh config dir and a fresh key, logged in with --with-key (file storage: no D-Bus here) */
async function loggedIn(opts: { email?: string } = {}) {
  const t = tempConfigDir();
  const seeded = await seedKeyInDataDir(dataDir, { email: opts.email });
  const r = await runCli(['--server', url, 'login', '--with-key'], {
    configDir: t.dir,
    input: `${seeded.apiKey}\n`,
    env: NO_DBUS,
  });
  expect(r.code, r.stderr).toBe(0);
  return { ...seeded, dir: t.dir, t };
}

async function meStatus(apiKey: string): Promise<number> {
  const res = await fetch(`${url}/v1/me`, { headers: { 'xi-api-key': apiKey } });
  return res.status;
}

describe('breeze against a real server (breeze serve on port 0)', () => {
  it('serve stops cleanly with exit 0 on SIGINT and SIGTERM', async () => {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const t = tempConfigDir();
      const s = await startServe(join(t.dir, 'data'), t.dir);
      expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
      s.proc.kill(sig);
      expect(await stopped(s.proc)).toBe(0);
      t.cleanup();
    }
  });

  it('login --with-key stores the key in a 0600 file inside a 0700 dir, never in config.json', async () => {
    const { apiKey, keyId, dir, t } = await loggedIn();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'credentials.json')).mode & 0o777).toBe(0o600);
    const config = readFileSync(join(dir, 'config.json'), 'utf8');
    expect(config).not.toContain(apiKey);
    expect(JSON.parse(config).profiles.default).toMatchObject({
      server: url,
      key_id: keyId,
      storage: 'file',
      email: 'dev@example.com',
    });
    expect(readFileSync(join(dir, 'credentials.json'), 'utf8')).toContain(apiKey);
    t.cleanup();
  });

  it('login again keeps a replaced key no login made (pasted, or from keys create): it may be in use elsewhere', async () => {
    const first = await loggedIn(); // --with-key of a key created through the API (created_via api)
    const second = await seedKeyInDataDir(dataDir, { email: 'dev@example.com' });
    const r = await runCli(['--server', url, 'login', '--with-key'], {
      configDir: first.dir,
      input: `${second.apiKey}\n`,
      env: NO_DBUS,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(await meStatus(first.apiKey)).toBe(200);
    expect(await meStatus(second.apiKey)).toBe(200);
    expect(r.stderr).toContain(`previous key ${first.keyId} was not made by a login for it`);
    expect(r.stderr).toContain('so it was kept and still works');
    expect(r.stderr).not.toContain('Deleted');
    // the profile holds the new key only
    const status = await runCli(['--json', 'status'], { configDir: first.dir, env: NO_DBUS });
    expect(JSON.parse(status.stdout).key_id).toBe(second.keyId);
    first.t.cleanup();
  });

  it('login warns in one line when the keychain is unusable, and fails when --storage keychain was asked for', async () => {
    const t = tempConfigDir();
    const { apiKey } = await seedKeyInDataDir(dataDir);
    const auto = await runCli(['--server', url, 'login', '--with-key'], {
      configDir: t.dir,
      input: apiKey,
      env: NO_DBUS,
    });
    expect(auto.code).toBe(0);
    expect(auto.stderr).toMatch(/^Warning: .*keychain.*credentials\.json.*$/m);
    expect(auto.stderr).toMatch(/Logged in as dev@example\.com with key brz_\w{8}/);
    expect(auto.stderr).not.toContain(apiKey);
    const t2 = tempConfigDir();
    const forced = await runCli(['--server', url, 'login', '--with-key', '--storage', 'keychain'], {
      configDir: t2.dir,
      input: apiKey,
      env: NO_DBUS,
    });
    expect(forced.code).toBe(1);
    expect(forced.stderr).toMatch(/--storage file/);
    t.cleanup();
    t2.cleanup();
  });

  it('status --json has the documented shape; global flags work before and after the command', async () => {
    const { keyId, dir, t } = await loggedIn();
    for (const args of [
      ['--json', 'status'],
      ['status', '--json'],
      ['whoami', '--json'],
    ]) {
      const r = await runCli(args, { configDir: dir, env: NO_DBUS });
      expect(r.code, r.stderr).toBe(0);
      const s = JSON.parse(r.stdout);
      expect(s).toMatchObject({
        profile: 'default',
        server: url,
        key_id: keyId,
        storage: 'file',
        valid: true,
      });
      expect(s.user).toMatchObject({ email: 'dev@example.com' });
      expect(s.user.id).toMatch(/^usr_/);
      expect(s.prefix).toMatch(/^brz_\w{8}$/);
    }
    t.cleanup();
  });

  it('every global flag works before and after the command, on the fast path (token, env) too', async () => {
    const { apiKey, dir, t } = await loggedIn();
    const second = await seedKeyInDataDir(dataDir, { email: 'second-profile@example.com' });
    const added = await runCli(['--server', url, '--profile', 'p2', 'login', '--with-key'], {
      configDir: dir,
      input: `${second.apiKey}\n`,
      env: NO_DBUS,
    });
    expect(added.code, added.stderr).toBe(0);
    const both = (flag: string[], cmd: string[]) => [
      [...flag, ...cmd],
      [...cmd, ...flag],
    ];
    // --profile: the other profile's key and name
    for (const args of both(['--profile', 'p2'], ['token'])) {
      const r = await runCli(args, { configDir: dir, env: NO_DBUS });
      expect(r.stdout.trim(), args.join(' ')).toBe(second.apiKey);
    }
    for (const args of both(['--profile', 'p2'], ['status', '--json'])) {
      const r = await runCli(args, { configDir: dir, env: NO_DBUS });
      expect(JSON.parse(r.stdout).profile, args.join(' ')).toBe('p2');
    }
    // --config-dir: no BREEZE_CONFIG_DIR, an empty HOME
    const home = tempConfigDir();
    for (const cmd of [['token'], ['env', '--format', 'json']]) {
      for (const args of both(['--config-dir', dir], cmd)) {
        const r = await runCli(args, { env: { ...NO_DBUS, HOME: home.dir } });
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
        expect(r.stdout, args.join(' ')).toContain(apiKey);
      }
    }
    // --server: a server the profile holds no key for is not sent this one (exit 3 either way)
    for (const cmd of [['token'], ['status']]) {
      for (const args of both(['--server', 'http://127.0.0.1:9'], cmd)) {
        const r = await runCli(args, { configDir: dir, env: NO_DBUS });
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(3);
      }
    }
    // --verbose: the HTTP trace on stderr, the key redacted
    for (const args of both(['--verbose'], ['status'])) {
      const r = await runCli(args, { configDir: dir, env: NO_DBUS });
      expect(r.stderr, args.join(' ')).toMatch(/^> GET http:\/\/127\.0\.0\.1:\d+\/v1\//m);
      expect(r.stderr).toContain('xi-api-key: [redacted]');
      expect(r.stderr).not.toContain(apiKey);
    }
    // --no-color wins over FORCE_COLOR
    const coloured = await runCli(['keys', 'list'], {
      configDir: dir,
      env: { ...NO_DBUS, FORCE_COLOR: '1' },
    });
    expect(coloured.stdout).toContain('\u001b[');
    for (const args of both(['--no-color'], ['keys', 'list'])) {
      const r = await runCli(args, { configDir: dir, env: { ...NO_DBUS, FORCE_COLOR: '1' } });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout, args.join(' ')).not.toContain('\u001b[');
    }
    home.cleanup();
    t.cleanup();
  });

  it('status says when BREEZE_API_KEY shadows the stored key, and warns about a key expiring within 7 days', async () => {
    const { dir, t } = await loggedIn();
    const other = await seedKeyInDataDir(dataDir, {
      expiresAt: new Date(Date.now() + 2 * 86400_000).toISOString(),
    });
    const r = await runCli(['status'], { configDir: dir, env: { ...NO_DBUS, BREEZE_API_KEY: other.apiKey } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Source:\s+BREEZE_API_KEY/);
    expect(r.stderr).toMatch(/BREEZE_API_KEY is set: it shadows the key stored/);
    expect(r.stderr).toMatch(/expires in 2 day/);
    t.cleanup();
  });

  it('token prints the key alone; eval "$(breeze env)" in bash exports a working key', async () => {
    const { apiKey, keyId, dir, t } = await loggedIn();
    const tok = await runCli(['token'], { configDir: dir, env: NO_DBUS });
    expect(tok.code).toBe(0);
    expect(tok.stdout).toBe(`${apiKey}\n`);
    const script = `eval "$(node ${BIN} env)" && curl -s -o /dev/null -w '%{http_code} ' -H "xi-api-key: $BREEZE_API_KEY" "$BREEZE_SERVER/v1/me" && printf %s "$BREEZE_API_KEY_ID"`;
    const out = execFileSync('bash', ['-c', script], { env: cliEnv(dir, NO_DBUS), encoding: 'utf8' });
    expect(out).toBe(`200 ${keyId}`);
    const json = await runCli(['env', '--format', 'json'], { configDir: dir, env: NO_DBUS });
    expect(JSON.parse(json.stdout)).toEqual({
      BREEZE_API_KEY: apiKey,
      BREEZE_API_KEY_ID: keyId,
      BREEZE_SERVER: url,
    });
    t.cleanup();
  });

  it('env and run with a BREEZE_API_KEY that was never saved: the key id comes from the server; an unknown key is printed without one', async () => {
    const seeded = await seedKeyInDataDir(dataDir, {});
    const t = tempConfigDir();
    const env = { ...NO_DBUS, BREEZE_API_KEY: seeded.apiKey, BREEZE_SERVER: url };
    const json = await runCli(['env', '--format', 'json'], { configDir: t.dir, env });
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      BREEZE_API_KEY: seeded.apiKey,
      BREEZE_API_KEY_ID: seeded.keyId,
      BREEZE_SERVER: url,
    });
    const run = await runCli(['run', '--', 'sh', '-c', 'printf %s "$BREEZE_API_KEY_ID"'], {
      configDir: t.dir,
      env,
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe(seeded.keyId);
    // a well-formed key the server does not know: still printed (env does not judge keys), without an id
    const other = await runCli(['env', '--format', 'json'], {
      configDir: t.dir,
      env: { ...env, BREEZE_API_KEY: generateApiKey() },
    });
    expect(other.code, other.stderr).toBe(0);
    expect(Object.keys(JSON.parse(other.stdout))).toEqual(['BREEZE_API_KEY', 'BREEZE_SERVER']);
    expect(other.stderr).toMatch(/BREEZE_API_KEY_ID is left out/);
    t.cleanup();
  });

  it('run -- injects the variables and passes the exit code on', async () => {
    const { dir, t } = await loggedIn();
    const r = await runCli(
      [
        'run',
        '--',
        'sh',
        '-c',
        'curl -s -o /dev/null -w "%{http_code}" -H "xi-api-key: $BREEZE_API_KEY" "$BREEZE_SERVER/v1/me"; exit 7',
      ],
      { configDir: dir, env: NO_DBUS },
    );
    expect(r.stdout).toBe('200');
    expect(r.code).toBe(7);
    const missing = await runCli(['run', '--', 'definitely-not-a-command-xyz'], {
      configDir: dir,
      env: NO_DBUS,
    });
    expect(missing.code).toBe(127);
    t.cleanup();
  });

  it('run forwards SIGINT to the child and exits 130 when it dies of it', async () => {
    const { dir, t } = await loggedIn();
    const child = spawnCli(
      ['run', '--', 'sh', '-c', 'trap "echo got-int; exit 130" INT; echo ready; while :; do sleep 0.1; done'],
      {
        configDir: dir,
        env: NO_DBUS,
      },
    );
    await waitForOutput(child, /ready/, 'stdout');
    let out = '';
    child.stdout?.on('data', (d) => {
      out += d;
    });
    child.kill('SIGINT');
    expect(await stopped(child)).toBe(130);
    expect(out).toContain('got-int');
    t.cleanup();
  });

  it('the CI rotation story: BREEZE_API_KEY=old keys rotate --self --grace 0 --json', async () => {
    const t = tempConfigDir();
    const old = await seedKeyInDataDir(dataDir, { email: 'ci@example.com' });
    const r = await runCli(['keys', 'rotate', '--self', '--grace', '0', '--json'], {
      configDir: t.dir,
      env: { ...NO_DBUS, BREEZE_API_KEY: old.apiKey, BREEZE_SERVER: url },
    });
    expect(r.code, r.stderr).toBe(0);
    const body = JSON.parse(r.stdout);
    expect(body.api_key).toMatch(/^brz_/);
    expect(body.rotated_from).toBe(old.keyId);
    expect(body.previous.key_id).toBe(old.keyId);
    expect(r.stderr).not.toContain(body.api_key);
    expect(await meStatus(body.api_key)).toBe(200);
    await new Promise((res) => setTimeout(res, 1100)); // revocation bound: 1 s
    expect(await meStatus(old.apiKey)).toBe(401);
    const oldStatus = await runCli(['status'], {
      configDir: t.dir,
      env: { ...NO_DBUS, BREEZE_API_KEY: old.apiKey, BREEZE_SERVER: url },
    });
    expect(oldStatus.code).toBe(3);
    t.cleanup();
  });

  it('two CI jobs rotating one key at once: one wins, the other gets 409, exit 1, {"error"} on stdout; so does a rotated key', async () => {
    const t = tempConfigDir();
    const old = await seedKeyInDataDir(dataDir, { email: 'ci-race@example.com' });
    const env = { ...NO_DBUS, BREEZE_API_KEY: old.apiKey, BREEZE_SERVER: url };
    const args = ['keys', 'rotate', '--self', '--grace', '15m', '--json'];
    const [a, b] = await Promise.all([
      runCli(args, { configDir: t.dir, env }),
      runCli(args, { configDir: t.dir, env }),
    ]);
    const won = [a, b].filter((r) => r.code === 0);
    const lost = [a, b].filter((r) => r.code !== 0);
    expect(won.length, `${a.stderr}\n${b.stderr}`).toBe(1);
    expect(lost.length).toBe(1);
    expect(JSON.parse(won[0]!.stdout).rotated_from).toBe(old.keyId);
    const failure = lost[0]!;
    expect(failure.code, failure.stderr).toBe(1);
    const doc = JSON.parse(failure.stdout);
    expect(Object.keys(doc)).toEqual(['error']);
    expect(doc.error).toMatchObject({ code: expect.any(String), message: expect.any(String), status: 409 });
    // the old key still works in its grace period, but it cannot be rotated again
    const again = await runCli(args, { configDir: t.dir, env });
    expect(again.code, again.stderr).toBe(1);
    expect(JSON.parse(again.stdout).error).toMatchObject({ status: 409 });
    t.cleanup();
  });

  it('keys rotate --self replaces the stored copy; keys list/create --json shapes', async () => {
    const { dir, keyId, t } = await loggedIn();
    const rot = await runCli(['keys', 'rotate', '--self', '--grace', '0', '--json'], {
      configDir: dir,
      env: NO_DBUS,
    });
    expect(rot.code, rot.stderr).toBe(0);
    const rotated = JSON.parse(rot.stdout);
    const tok = await runCli(['token'], { configDir: dir, env: NO_DBUS });
    expect(tok.stdout.trim()).toBe(rotated.api_key);
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).profiles.default.key_id).toBe(
      rotated.key_id,
    );
    const created = await runCli(
      ['keys', 'create', '--name', 'ci', '--scopes', 'read,write', '--expires-in', '30d', '--json'],
      {
        configDir: dir,
        env: NO_DBUS,
      },
    );
    expect(created.code, created.stderr).toBe(0);
    const c = JSON.parse(created.stdout);
    expect(c).toMatchObject({
      name: 'ci',
      scopes: ['read', 'write'],
      status: 'expiring',
      created_via: 'api',
    });
    expect(created.stderr).toMatch(/not be shown again/);
    const list = await runCli(['keys', 'list', '--all', '--json'], { configDir: dir, env: NO_DBUS });
    const ids = JSON.parse(list.stdout).data.map((k: { key_id: string }) => k.key_id);
    expect(ids).toEqual(expect.arrayContaining([rotated.key_id, c.key_id, keyId]));
    const active = JSON.parse(
      (await runCli(['keys', 'list', '--json'], { configDir: dir, env: NO_DBUS })).stdout,
    ).data;
    expect(active.map((k: { key_id: string }) => k.key_id)).not.toContain(keyId); // expired by the rotation
    const table = await runCli(['keys', 'list'], { configDir: dir, env: NO_DBUS });
    expect(table.stdout).toMatch(/^ID\s+NAME\s+PREFIX\s+SCOPES\s+STATUS/);
    expect(table.stdout).toContain(c.key_id);
    t.cleanup();
  });

  it('keys disable / enable / delete (delete needs --yes when not interactive)', async () => {
    const { dir, t } = await loggedIn();
    const c = JSON.parse(
      (await runCli(['keys', 'create', '--name', 'tmp', '--json'], { configDir: dir, env: NO_DBUS })).stdout,
    );
    const dis = await runCli(['keys', 'disable', c.key_id, '--json'], { configDir: dir, env: NO_DBUS });
    expect(JSON.parse(dis.stdout).status).toBe('disabled');
    expect(await meStatus(c.api_key)).toBe(401);
    const en = await runCli(['keys', 'enable', c.key_id, '--json'], { configDir: dir, env: NO_DBUS });
    expect(JSON.parse(en.stdout).status).toBe('active');
    const ask = await runCli(['keys', 'delete', c.key_id], { configDir: dir, env: NO_DBUS });
    expect(ask.code).toBe(2);
    expect(ask.stderr).toMatch(/--yes/);
    const del = await runCli(['keys', 'delete', c.key_id, '--yes'], { configDir: dir, env: NO_DBUS });
    expect(del.code, del.stderr).toBe(0);
    await new Promise((res) => setTimeout(res, 1100));
    expect(await meStatus(c.api_key)).toBe(401);
    t.cleanup();
  });

  it('logout deletes the key on the server, then the local copy; --keep-key keeps it alive', async () => {
    const a = await loggedIn();
    const out = await runCli(['logout'], { configDir: a.dir, env: NO_DBUS });
    expect(out.code, out.stderr).toBe(0);
    await new Promise((res) => setTimeout(res, 1100));
    expect(await meStatus(a.apiKey)).toBe(401);
    expect(readFileSync(join(a.dir, 'credentials.json'), 'utf8')).not.toContain(a.apiKey);
    expect((await runCli(['token'], { configDir: a.dir, env: NO_DBUS })).code).toBe(3);
    const b = await loggedIn();
    expect((await runCli(['logout', '--keep-key'], { configDir: b.dir, env: NO_DBUS })).code).toBe(0);
    expect(await meStatus(b.apiKey)).toBe(200);
    a.t.cleanup();
    b.t.cleanup();
  });

  it('--verbose traces HTTP on stderr with the key redacted', async () => {
    const { apiKey, dir, t } = await loggedIn();
    const r = await runCli(['--verbose', 'keys', 'create', '--name', 'v', '--json'], {
      configDir: dir,
      env: NO_DBUS,
    });
    expect(r.code).toBe(0);
    const created = JSON.parse(r.stdout);
    expect(r.stderr).toMatch(/> POST http:\/\/127\.0\.0\.1:\d+\/v1\/api-keys/);
    expect(r.stderr).toMatch(/xi-api-key: \[redacted\]/);
    expect(r.stderr).toMatch(/"api_key":"\[redacted\]"/);
    expect(r.stderr).not.toContain(apiKey);
    expect(r.stderr).not.toContain(created.api_key);
    t.cleanup();
  });

  it('BREEZE_DEBUG=1 traces HTTP like --verbose, the key redacted; without it nothing is traced', async () => {
    const { apiKey, dir, t } = await loggedIn();
    const r = await runCli(['keys', 'list', '--json'], {
      configDir: dir,
      env: { ...NO_DBUS, BREEZE_DEBUG: '1' },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/> GET http:\/\/127\.0\.0\.1:\d+\/v1\/api-keys/);
    expect(r.stderr).toMatch(/xi-api-key: \[redacted\]/);
    expect(r.stderr).not.toContain(apiKey);
    JSON.parse(r.stdout); // the trace stays off stdout
    const quiet = await runCli(['keys', 'list', '--json'], { configDir: dir, env: NO_DBUS });
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).not.toMatch(/> GET/);
    t.cleanup();
  });

  it('HTTP_PROXY carries requests to an http served Breeze through the proxy (HTTPS_PROXY does not), HTTPS_PROXY an https one; NO_PROXY bypasses it', async () => {
    const { apiKey, t } = await loggedIn();
    const target = new URL(url);
    // a proxy on loopback that only it can route: the host name below resolves nowhere else
    const seen: string[] = [];
    const proxy = createHttpServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      const u = new URL(req.url ?? '/');
      const up = httpRequest(
        {
          host: '127.0.0.1',
          port: target.port,
          path: u.pathname + u.search,
          method: req.method,
          headers: req.headers,
        },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.writeHead(502).end());
      req.pipe(up);
    });
    proxy.on('connect', (req, client, head) => {
      seen.push(`CONNECT ${req.url}`);
      const up = netConnect(Number(target.port), '127.0.0.1', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        up.write(head);
        up.pipe(client);
        client.pipe(up);
      });
      up.on('error', () => client.destroy());
      client.on('error', () => up.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const via = `http://breeze-behind-proxy.invalid:${target.port}`;
    try {
      const env = { ...NO_DBUS, BREEZE_API_KEY: apiKey, NO_PROXY: undefined, no_proxy: undefined };
      for (const name of ['HTTP_PROXY', 'HTTPS_PROXY']) {
        seen.length = 0;
        const r = await runCli(['--server', via, 'keys', 'list', '--json'], {
          configDir: t.dir,
          env: { ...env, [name]: proxyUrl, http_proxy: undefined, https_proxy: undefined },
        });
        if (name === 'HTTP_PROXY') {
          expect(r.code, r.stderr).toBe(0);
          expect(JSON.parse(r.stdout).data).toEqual(expect.any(Array));
          expect(seen.join('\n')).toContain('breeze-behind-proxy.invalid');
        } else {
          // an http:// server is not reached through HTTPS_PROXY: the name resolves nowhere, exit 1
          expect(r.code, r.stderr).toBe(1);
        }
      }
      // an https:// server goes through HTTPS_PROXY, in a CONNECT tunnel (here to a plain-http
      // port, so the TLS handshake then fails: what this shows is the route, not an answer)
      seen.length = 0;
      const tls = await runCli(
        ['--server', `https://breeze-behind-proxy.invalid:${target.port}`, 'keys', 'list', '--json'],
        {
          configDir: t.dir,
          env: {
            ...env,
            HTTPS_PROXY: proxyUrl,
            HTTP_PROXY: undefined,
            http_proxy: undefined,
            https_proxy: undefined,
          },
        },
      );
      expect(tls.code).not.toBe(0);
      expect(seen.length).toBeGreaterThan(0);
      expect(new Set(seen)).toEqual(new Set([`CONNECT breeze-behind-proxy.invalid:${target.port}`]));
      // NO_PROXY names the server: the proxy sees nothing and the request goes straight there
      seen.length = 0;
      const direct = await runCli(['--server', url, 'keys', 'list', '--json'], {
        configDir: t.dir,
        env: { ...env, HTTP_PROXY: proxyUrl, NO_PROXY: '127.0.0.1' },
      });
      expect(direct.code, direct.stderr).toBe(0);
      expect(seen).toEqual([]);
    } finally {
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
      t.cleanup();
    }
  });

  describe('exit codes', () => {
    it('2: usage errors', async () => {
      const t = tempConfigDir();
      for (const args of [
        ['--nope'],
        ['env', '--format', 'csh'],
        ['keys', 'create'],
        ['keys', 'rotate', '--grace', 'soon', '--self'],
        ['nosuchcommand'],
      ]) {
        const r = await runCli(args, { configDir: t.dir });
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      }
      t.cleanup();
    });

    it('3: no credential, or a key the server refuses', async () => {
      const t = tempConfigDir();
      for (const cmd of [['token'], ['env'], ['status'], ['keys', 'list']]) {
        const r = await runCli(['--server', url, ...cmd], { configDir: t.dir });
        expect(r.code, cmd.join(' ')).toBe(3);
        expect(r.stderr).toMatch(/breeze login/);
      }
      const bogus = 'brz_' + 'A'.repeat(46);
      const r = await runCli(['--server', url, 'keys', 'list'], {
        configDir: t.dir,
        env: { BREEZE_API_KEY: bogus },
      });
      expect(r.code).toBe(3);
      t.cleanup();
    });

    it('4: forbidden (no admin scope) and not found', async () => {
      const t = tempConfigDir();
      const reader = await seedKeyInDataDir(dataDir, { scopes: ['read'] });
      const env = { BREEZE_API_KEY: reader.apiKey, BREEZE_SERVER: url };
      expect((await runCli(['keys', 'list'], { configDir: t.dir, env })).code).toBe(4);
      const admin = await seedKeyInDataDir(dataDir);
      const nf = await runCli(['keys', 'disable', 'key_01AAAAAAAAAAAAAAAAAAAAAAAA'], {
        configDir: t.dir,
        env: { BREEZE_API_KEY: admin.apiKey, BREEZE_SERVER: url },
      });
      expect(nf.code, nf.stderr).toBe(4);
      t.cleanup();
    });

    it('1: server unreachable', async () => {
      const t = tempConfigDir();
      const { apiKey } = await seedKeyInDataDir(dataDir);
      const r = await runCli(['status'], {
        configDir: t.dir,
        env: { BREEZE_API_KEY: apiKey, BREEZE_SERVER: 'http://127.0.0.1:9' },
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/Cannot reach http:\/\/127\.0\.0\.1:9/);
      t.cleanup();
    });

    it('130: Ctrl-C while waiting for a server that never answers', async () => {
      const sockets: import('node:net').Socket[] = [];
      const silent: Server = createServer((s) => sockets.push(s));
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      const port = (silent.address() as { port: number }).port;
      const t = tempConfigDir();
      const { apiKey } = await seedKeyInDataDir(dataDir);
      const child = spawnCli(['status'], {
        configDir: t.dir,
        env: { BREEZE_API_KEY: apiKey, BREEZE_SERVER: `http://127.0.0.1:${port}` },
      });
      await new Promise<void>((r) => silent.once('connection', () => r()));
      child.kill('SIGINT');
      expect(await stopped(child)).toBe(130);
      for (const s of sockets) s.destroy();
      silent.close();
      t.cleanup();
    });
  });
});

describe('embedded mode', () => {
  it('with no server configured, commands use <config dir>/server; breeze serve serves the same keys', async () => {
    const t = tempConfigDir();
    mkdirSync(join(t.dir, 'server'), { recursive: true });
    const { apiKey, keyId } = await seedKeyInDataDir(join(t.dir, 'server'));
    const login = await runCli(['login', '--with-key', '--json'], {
      configDir: t.dir,
      input: apiKey,
      env: NO_DBUS,
    });
    expect(login.code, login.stderr).toBe(0);
    expect(JSON.parse(login.stdout)).toMatchObject({ server: 'embedded', key_id: keyId, storage: 'file' });
    const st = await runCli(['status', '--json'], { configDir: t.dir, env: NO_DBUS });
    expect(JSON.parse(st.stdout)).toMatchObject({ server: 'embedded', valid: true, key_id: keyId });
    const env = await runCli(['env'], { configDir: t.dir, env: NO_DBUS });
    expect(env.stdout).not.toContain('BREEZE_SERVER');
    const s = await startServe(join(t.dir, 'server'), t.dir);
    try {
      const remote = await runCli(['status', '--json'], {
        configDir: t.dir,
        env: { ...NO_DBUS, BREEZE_API_KEY: apiKey, BREEZE_SERVER: s.url },
      });
      expect(JSON.parse(remote.stdout)).toMatchObject({ valid: true, key_id: keyId });
    } finally {
      s.proc.kill('SIGTERM');
      await stopped(s.proc);
    }
    t.cleanup();
  });
});

describe('a stored key only ever goes to its own server', () => {
  it('logout against another server refuses (exit 2), sends nothing, and keeps the profile', async () => {
    const { apiKey, dir } = await loggedIn({ email: 'elsewhere@example.com' });
    // a listener that records whether anything at all arrives
    let connections = 0;
    const trap: Server = createServer((sock) => {
      connections++;
      sock.destroy();
    });
    await new Promise<void>((r) => trap.listen(0, '127.0.0.1', r));
    const port = (trap.address() as { port: number }).port;
    try {
      const r = await runCli(['logout', '--server', `http://127.0.0.1:${port}`], {
        configDir: dir,
        env: NO_DBUS,
      });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(url);
      expect(connections).toBe(0);
      expect(await meStatus(apiKey)).toBe(200);
      const status = await runCli(['status', '--json'], { configDir: dir, env: NO_DBUS });
      expect(JSON.parse(status.stdout).valid).toBe(true);
    } finally {
      trap.close();
    }
  });

  it('refuses profile names that collide with object internals and server URLs with credentials', async () => {
    const t = tempConfigDir();
    for (const name of ['constructor', '__proto__', 'toString']) {
      const r = await runCli(['keys', 'list', '--profile', name], { configDir: t.dir, env: NO_DBUS });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/Invalid profile name/);
    }
    const r = await runCli(['status', '--server', 'https://bob:s3cret@breeze.example.com'], {
      configDir: t.dir,
      env: NO_DBUS,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).not.toContain('s3cret');
    t.cleanup();
  });

  it('serve: a --database-url, --smtp-url or --public-url that is not such a URL is a usage error (exit 2), never echoed', async () => {
    const t = tempConfigDir();
    for (const [flag, value] of [
      ['--database-url', 'mysql://root:s3cret@db/breeze'],
      ['--database-url', 's3cret-not-a-url'],
      ['--smtp-url', 'ftp://me:s3cret@mail.example.com'],
      ['--smtp-url', 'smtp://'],
      ['--public-url', 'ftp://breeze.example.com'],
      ['--data-dir', ''],
    ] as const) {
      const r = await runCli(['serve', '--port', '0', flag, value, '--json'], {
        configDir: t.dir,
        env: NO_DBUS,
        timeoutMs: 15_000,
      });
      expect(r.code, `${flag} ${value}: ${r.stderr}`).toBe(2);
      expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'USAGE', exit_code: 2 } });
      expect(r.stderr).toContain(flag);
      expect(r.stdout + r.stderr).not.toContain('s3cret');
    }
    t.cleanup();
  });

  it('serve: a --database-url pg accepts is no usage error although it is no WHATWG URL (unix socket, docs/self-hosting.md)', async () => {
    const t = tempConfigDir();
    for (const value of [
      'postgres://breeze@/breeze?host=/nonexistent-breeze-socket-dir',
      'postgres://breeze:s3cret/with@slash@127.0.0.1:1/breeze',
    ]) {
      const r = await runCli(['serve', '--port', '0', '--database-url', value, '--json'], {
        configDir: t.dir,
        env: NO_DBUS,
        timeoutMs: 30_000,
      });
      // it reaches the connect, which fails here (exit 1), not the flag check (exit 2)
      expect(r.code, `${value}: ${r.stderr}`).toBe(1);
      expect(r.stdout + r.stderr).not.toContain('s3cret');
    }
    t.cleanup();
  });

  it("an empty --config-dir or --server (a script's unset variable) is a usage error, not the working directory", async () => {
    const t = tempConfigDir();
    const cwd = join(t.dir, '..', 'checkout');
    mkdirSync(cwd, { recursive: true });
    const seeded = await seedKeyInDataDir(dataDir, { email: 'empty-flag@example.com' });
    for (const args of [
      ['--config-dir', '', '--server', url, 'login', '--with-key', '--storage', 'file'],
      ['--config-dir=', '--server', url, 'login', '--with-key', '--storage', 'file'],
      ['--config-dir', '', 'token'],
      ['--server', '', 'status', '--json'],
    ]) {
      const r = await runCli(args, { configDir: t.dir, cwd, input: seeded.apiKey, env: NO_DBUS });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/--(config-dir|server) is empty/);
    }
    expect(readdirSync(cwd)).toEqual([]);
    t.cleanup();
  });

  it('keys create --expires-in 0 is a usage error, not a key that never expires', async () => {
    const { dir } = await loggedIn();
    const r = await runCli(['keys', 'create', '--name', 'zero', '--expires-in', '0', '--json'], {
      configDir: dir,
      env: NO_DBUS,
    });
    expect(r.code, r.stderr).toBe(2);
    // issue 10: with --json a failure is an error document on stdout (no key in it)
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'USAGE' } });
    expect(r.stdout).not.toMatch(/brz_/);
  });
});
