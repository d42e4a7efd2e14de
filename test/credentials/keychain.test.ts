import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cliEnv, collect, runCli, tempConfigDir } from '../helpers/cli.js';
import { requirePart } from '../helpers/require.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const available = has('dbus-run-session') && has('gnome-keyring-daemon') && has('secret-tool');
const skip = requirePart(
  'Secret Service (gnome-keyring under dbus-run-session)',
  available,
  'dbus-run-session, gnome-keyring-daemon or secret-tool not installed',
);
const DIST_STORE = resolve(import.meta.dirname, '../../dist/credentials/keychain-store.js');

/** Runs a shell script inside a private D-Bus session with an unlocked gnome-keyring. */
function inKeyringSession(script: string, env: NodeJS.ProcessEnv, input = '') {
  const child = spawn(
    'dbus-run-session',
    [
      '--',
      'sh',
      '-c',
      `echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null; ${script}`,
    ],
    { env, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  return collect(child, { input, timeoutMs: 60_000 });
}

describe.skipIf(skip)('KeychainCredentialStore on a real Secret Service', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'breeze-kc-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('stores, reads back, replaces and deletes a secret under service "breeze"', async () => {
    const script = join(dir, 'kc.mjs');
    writeFileSync(
      script,
      `import { KeychainCredentialStore } from ${JSON.stringify(DIST_STORE)};
const s = new KeychainCredentialStore();
const out = {};
out.before = await s.get('p@x');
await s.set('p@x', 'secret-1');
out.first = await s.get('p@x');
await s.set('p@x', 'secret-2');
out.second = await s.get('p@x');
out.other = await s.get('q@x');
out.deleted = await s.delete('p@x');
out.after = await s.get('p@x');
out.deletedAgain = await s.delete('p@x');
console.log(JSON.stringify(out));`,
    );
    const r = await inKeyringSession(`exec node ${script}`, process.env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      before: null,
      first: 'secret-1',
      second: 'secret-2',
      other: null,
      deleted: true,
      after: null,
      deletedAgain: false,
    });
  });

  it('breeze login --with-key stores the key in the keychain (service breeze, account <profile>@<server>), never in a file', async () => {
    const server: TestServer = await startTestServer();
    const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
    const { apiKey, keyId } = await server.seedKey();
    const t = tempConfigDir();
    const env = cliEnv(t.dir, { BREEZE_SERVER: url });
    const r = await inKeyringSession(
      `node ${BIN} login --with-key --profile work && node ${BIN} --profile work status --json && ` +
        `printf 'stored=%s\\n' "$(secret-tool lookup service breeze username work@${url})" && node ${BIN} --profile work token`,
      env,
      apiKey,
    );
    expect(r.code, r.stderr).toBe(0);
    const status = JSON.parse(r.stdout.slice(0, r.stdout.indexOf('stored=')));
    expect(status).toMatchObject({ profile: 'work', storage: 'keychain', key_id: keyId, valid: true });
    expect(r.stdout).toContain(`stored=${apiKey}`);
    expect(r.stdout.trim().endsWith(apiKey)).toBe(true);
    expect(r.stderr).toMatch(/stored in the OS keychain/);
    expect(r.stderr).not.toMatch(/Warning/);
    const config = readFileSync(join(t.dir, 'config.json'), 'utf8');
    expect(config).not.toContain(apiKey);
    expect(JSON.parse(config).profiles.work.storage).toBe('keychain');
    expect(() => readFileSync(join(t.dir, 'credentials.json'))).toThrow();
    await server.close();
    t.cleanup();
  });
});

/** A D-Bus "daemon" that accepts connections and never says a word (a hung keyring). */
async function silentBus(): Promise<{ sock: string; close(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'breeze-hang-'));
  const sock = join(dir, 'bus');
  const held: Socket[] = [];
  const silent = createServer((s) => held.push(s));
  await new Promise<void>((r) => silent.listen(sock, r));
  return {
    sock,
    close() {
      for (const s of held) s.destroy();
      silent.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('keychain unusable', () => {
  let server: TestServer;
  let url: string;
  beforeAll(async () => {
    server = await startTestServer();
    url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(() => server.close());

  it('no D-Bus session: falls back to the file with a one-line warning', async () => {
    const { apiKey } = await server.seedKey();
    const t = tempConfigDir();
    const r = await runCli(['--server', url, 'login', '--with-key'], {
      configDir: t.dir,
      input: apiKey,
      env: { DBUS_SESSION_BUS_ADDRESS: undefined },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.split('\n').filter((l) => /^Warning/.test(l))).toHaveLength(1);
    expect(
      JSON.parse(readFileSync(join(t.dir, 'credentials.json'), 'utf8')).credentials[`default@${url}`],
    ).toBe(apiKey);
    t.cleanup();
  });

  it('a keyring that never answers cannot hang breeze: the call times out and the file is used', async () => {
    const bus = await silentBus();
    const sock = bus.sock;
    const { apiKey } = await server.seedKey();
    const t = tempConfigDir();
    const started = Date.now();
    const r = await runCli(['--server', url, 'login', '--with-key'], {
      configDir: t.dir,
      input: apiKey,
      env: { DBUS_SESSION_BUS_ADDRESS: `unix:path=${sock}`, BREEZE_KEYCHAIN_TIMEOUT_MS: '1500' },
      timeoutMs: 20_000,
    });
    const elapsed = Date.now() - started;
    expect(r.signal).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/did not answer within 1500 ms/);
    expect(elapsed).toBeLessThan(12_000);
    const tok = await runCli(['--server', url, 'token'], {
      configDir: t.dir,
      env: { DBUS_SESSION_BUS_ADDRESS: `unix:path=${sock}` },
    });
    expect(tok.stdout.trim()).toBe(apiKey); // file profile: the keychain is not even asked
    // without BREEZE_KEYCHAIN_TIMEOUT_MS the bound is the documented 3000 ms
    const t2 = tempConfigDir();
    const byDefault = await runCli(['--server', url, 'login', '--with-key'], {
      configDir: t2.dir,
      input: apiKey,
      env: { DBUS_SESSION_BUS_ADDRESS: `unix:path=${sock}`, BREEZE_KEYCHAIN_TIMEOUT_MS: undefined },
      timeoutMs: 20_000,
    });
    expect(byDefault.code, byDefault.stderr).toBe(0);
    expect(byDefault.stderr).toMatch(/did not answer within 3000 ms/);
    t2.cleanup();
    bus.close();
    t.cleanup();
  });

  it('reading and deleting are bounded too: every command of a keychain profile returns while the keyring never answers', async () => {
    const bus = await silentBus();
    const sock = bus.sock;
    const { apiKey, keyId, userId } = await server.seedKey({ email: 'hung-read@example.com' });
    const t = tempConfigDir();
    // the profile as `breeze login --storage keychain` leaves it
    mkdirSync(t.dir, { recursive: true, mode: 0o700 });
    writeFileSync(
      join(t.dir, 'config.json'),
      JSON.stringify({
        version: 1,
        profiles: {
          default: {
            server: url,
            key_id: keyId,
            prefix: apiKey.slice(0, 12),
            email: 'hung-read@example.com',
            user_id: userId,
            storage: 'keychain',
            expires_at: null,
          },
        },
      }),
      { mode: 0o600 },
    );
    const env = { DBUS_SESSION_BUS_ADDRESS: `unix:path=${sock}`, BREEZE_KEYCHAIN_TIMEOUT_MS: '1000' };
    for (const args of [['token'], ['env'], ['status'], ['keys', 'list'], ['doctor'], ['logout']]) {
      const started = Date.now();
      const r = await runCli(args, { configDir: t.dir, env, timeoutMs: 20_000 });
      const elapsed = Date.now() - started;
      expect(r.signal, args.join(' ')).toBeNull();
      // no key could be read: not a success, and never the key
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).not.toBe(0);
      expect(r.stdout + r.stderr).not.toContain(apiKey);
      expect(elapsed, args.join(' ')).toBeLessThan(8_000);
    }
    // logout refused to forget the profile whose key it could not delete
    expect(JSON.parse(readFileSync(join(t.dir, 'config.json'), 'utf8')).profiles.default?.key_id).toBe(keyId);
    expect((await fetch(`${url}/v1/me`, { headers: { 'xi-api-key': apiKey } })).status).toBe(200);
    bus.close();
    t.cleanup();
  });
});
