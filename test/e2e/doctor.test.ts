/**
 * `breeze doctor` end to end (issue 15): the built CLI against a real server on port 0, with the
 * real Secret Service (gnome-keyring under dbus-run-session) and without D-Bus (file storage).
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cliEnv, collect, runCli, tempConfigDir } from '../helpers/cli.js';
import { requirePart } from '../helpers/require.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const NO_DBUS = { DBUS_SESSION_BUS_ADDRESS: undefined };
let server: TestServer;
let url: string;

beforeAll(async () => {
  server = await startTestServer();
  url = await server.app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(() => server.close());

interface Report {
  ok: boolean;
  storage: { backend: string; reason: string };
  checks: Array<{ name: string; ok: boolean; detail: string; fix?: string }>;
}

function check(r: Report, name: string) {
  const c = r.checks.find((x) => x.name === name);
  if (!c) throw new Error(`no check ${name} in ${JSON.stringify(r)}`);
  return c;
}

async function loggedIn(extraEnv: Record<string, string | undefined> = NO_DBUS) {
  const t = tempConfigDir();
  const seeded = await server.seedKey({ email: 'doc@example.com' });
  const r = await runCli(['--server', url, 'login', '--with-key', '--storage', 'file'], {
    configDir: t.dir,
    input: seeded.apiKey,
    env: extraEnv,
  });
  expect(r.code, r.stderr).toBe(0);
  return { ...seeded, t };
}

async function doctor(dir: string, env: Record<string, string | undefined> = NO_DBUS, server_ = url) {
  const r = await runCli(['--server', server_, 'doctor', '--json'], { configDir: dir, env });
  return { ...r, report: JSON.parse(r.stdout) as Report };
}

describe('breeze doctor', () => {
  it('all good with file storage: the contract shape, exit 0, why the file is used', async () => {
    const { t, apiKey } = await loggedIn();
    const r = await doctor(t.dir);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(Object.keys(r.report).sort()).toEqual(['checks', 'ok', 'storage']);
    expect(r.report.ok).toBe(true);
    expect(Object.keys(r.report.storage).sort()).toEqual(['backend', 'reason']);
    expect(r.report.storage.backend).toBe('file');
    // the backend of the profile (chosen at login), and what the keychain probe found, with its time
    expect(r.report.storage.reason).toContain('keeps its key in credentials.json (chosen at login)');
    expect(r.report.storage.reason).toMatch(/keychain (answered in|is not usable).* \d+ ms/);
    for (const c of r.report.checks) {
      expect(Object.keys(c).filter((k) => !['name', 'ok', 'detail', 'fix'].includes(k))).toEqual([]);
      expect(typeof c.detail).toBe('string');
    }
    expect(check(r.report, 'server').detail).toMatch(/answered in \d+ ms, API version/);
    expect(check(r.report, 'clock_skew').ok).toBe(true);
    expect(check(r.report, 'key').detail).toContain('doc@example.com');
    expect(check(r.report, 'credentials_file').ok).toBe(true);
    expect(r.stdout + r.stderr).not.toContain(apiKey);
    // human output: one line per check, exit 0
    const human = await runCli(['--server', url, 'doctor'], { configDir: t.dir, env: NO_DBUS });
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^ok\s+server: /m);
    t.cleanup();
  });

  it('before any login, the backend doctor names is the one a login then uses', async () => {
    // a keychain that answers reads but refuses writes (no Secret Service here) must not be "usable"
    const t = tempConfigDir();
    const before = await doctor(t.dir);
    const seeded = await server.seedKey({ email: 'doc-fresh@example.com' });
    const login = await runCli(['--server', url, 'login', '--with-key'], {
      configDir: t.dir,
      input: seeded.apiKey,
      env: NO_DBUS,
    });
    expect(login.code, login.stderr).toBe(0);
    const saved = JSON.parse(readFileSync(join(t.dir, 'config.json'), 'utf8')).profiles.default;
    expect(before.report.storage.backend).toBe(saved.storage);
    expect(check(before.report, 'keychain').detail.startsWith('usable')).toBe(saved.storage === 'keychain');
    t.cleanup();
  });

  it('a credentials file readable by others is a problem with the chmod fix', async () => {
    const { t } = await loggedIn();
    chmodSync(join(t.dir, 'credentials.json'), 0o644);
    const r = await doctor(t.dir);
    expect(r.code).toBe(1);
    expect(r.report.ok).toBe(false);
    const c = check(r.report, 'credentials_file');
    expect(c.ok).toBe(false);
    expect(c.detail).toContain('644');
    expect(c.fix).toBe(`chmod 600 ${join(t.dir, 'credentials.json')}`);
    chmodSync(t.dir, 0o755);
    expect(check((await doctor(t.dir)).report, 'config_dir').fix).toBe(`chmod 700 ${t.dir}`);
    t.cleanup();
  });

  it('an unreachable server: exit 1, the server check says so with a fix', async () => {
    const { t } = await loggedIn();
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as AddressInfo;
        s.close(() => resolve(port));
      });
    });
    const r = await doctor(t.dir, NO_DBUS, `http://127.0.0.1:${closed}`);
    expect(r.code).toBe(1);
    const c = check(r.report, 'server');
    expect(c.ok).toBe(false);
    expect(c.detail).toMatch(/cannot reach/i);
    // said once, not "cannot reach X: Cannot reach X: connection refused"
    expect(c.detail.match(/cannot reach/gi)).toHaveLength(1);
    expect(c.fix).toBeTruthy();
    t.cleanup();
  });

  it('a server clock 10 minutes off: the clock_skew check fails with a fix, exit 1', async () => {
    const { t, apiKey } = await loggedIn();
    // the real server behind a relay whose Date header is 10 minutes behind this machine
    const skewed = createHttpServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers))
        if (typeof v === 'string' && k !== 'host' && k !== 'content-length') headers[k] = v;
      const up = await fetch(`${url}${req.url}`, {
        method: req.method,
        headers,
        ...(chunks.length ? { body: Buffer.concat(chunks) } : {}),
      });
      const body = Buffer.from(await up.arrayBuffer());
      res.setHeader('date', new Date(Date.now() - 600_000).toUTCString());
      res.setHeader('content-type', up.headers.get('content-type') ?? 'application/json');
      res.writeHead(up.status).end(body);
    });
    await new Promise<void>((r) => skewed.listen(0, '127.0.0.1', r));
    try {
      const { port } = skewed.address() as AddressInfo;
      const r = await doctor(t.dir, { ...NO_DBUS, BREEZE_API_KEY: apiKey }, `http://127.0.0.1:${port}`);
      expect(check(r.report, 'server').ok).toBe(true);
      const c = check(r.report, 'clock_skew');
      expect(c.ok, JSON.stringify(c)).toBe(false);
      expect(c.detail).toMatch(/ahead of the server/);
      expect(c.fix).toBeTruthy();
      expect(r.report.ok).toBe(false);
      expect(r.code).toBe(1);
    } finally {
      skewed.closeAllConnections();
      await new Promise((r) => skewed.close(r));
      t.cleanup();
    }
  });

  it('a revoked key: the key check fails with "breeze login" as the fix', async () => {
    const { t, apiKey, keyId } = await loggedIn();
    const del = await fetch(`${url}/v1/api-keys/${keyId}`, {
      method: 'DELETE',
      headers: { 'xi-api-key': apiKey },
    });
    expect(del.status).toBeLessThan(300);
    const r = await doctor(t.dir);
    expect(r.code).toBe(1);
    const c = check(r.report, 'key');
    expect(c.ok).toBe(false);
    expect(c.detail).toMatch(/refuses/);
    expect(c.fix).toContain('breeze login');
    t.cleanup();
  });

  it('proxy variables are listed with their credentials redacted', async () => {
    const { t } = await loggedIn();
    const r = await doctor(t.dir, {
      ...NO_DBUS,
      HTTPS_PROXY: 'http://proxyuser:s3cretpw@proxy.invalid:3128',
      HTTP_PROXY: 'http://proxyuser:s3cretpw@proxy.invalid:3128',
      NO_PROXY: '127.0.0.1,localhost',
    });
    const c = check(r.report, 'proxy');
    expect(c.detail).toContain('HTTPS_PROXY=http://***@proxy.invalid:3128');
    expect(c.detail).toContain('NO_PROXY=127.0.0.1,localhost');
    expect(r.stdout + r.stderr).not.toContain('s3cretpw');
    expect(r.stdout + r.stderr).not.toContain('proxyuser');
    t.cleanup();
  });
});

function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const noKeyring = requirePart(
  'Secret Service (gnome-keyring under dbus-run-session)',
  has('dbus-run-session') && has('gnome-keyring-daemon'),
  'dbus-run-session or gnome-keyring-daemon not installed',
);

describe.skipIf(noKeyring)('breeze doctor with a real keychain', () => {
  it('reports the keychain backend and the probe time', async () => {
    const t = tempConfigDir();
    const child = spawn(
      'dbus-run-session',
      [
        '--',
        'sh',
        '-c',
        `echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null; exec "${process.execPath}" "${BIN}" --server "${url}" doctor --json`,
      ],
      // a slow first answer of a keyring that just started (a loaded CI machine) is not "unusable"
      { env: cliEnv(t.dir, { BREEZE_KEYCHAIN_TIMEOUT_MS: '20000' }), stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const r = await collect(child, { timeoutMs: 60_000 });
    const report = JSON.parse(r.stdout) as Report;
    expect(report.storage.backend, report.storage.reason).toBe('keychain');
    expect(report.storage.reason).toMatch(/keychain answered in \d+ ms/);
    expect(check(report, 'keychain')).toMatchObject({ ok: true });
    // not logged in: the one problem is the key, with its fix
    expect(r.code).toBe(1);
    expect(check(report, 'key').fix).toContain('breeze login');
    t.cleanup();
  });
});
