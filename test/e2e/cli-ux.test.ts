/**
 * What a new user trips over (issue 10), each checked on the spawned CLI against a real server on
 * port 0: help exits 0, bare-number durations, `--json` errors on stdout, and the wording of
 * `keys enable`, non-interactive prompts, stored rotations and a malformed BREEZE_API_KEY.
 */

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../../src/server/serve.js';
import { collect, runCli, spawnCli, tempConfigDir } from '../helpers/cli.js';
import { mintSeedKey, type SeedKeyOptions } from '../helpers/server.js';

// No D-Bus session: the keychain is unusable and the CLI falls back to the file.
const NO_DBUS = { DBUS_SESSION_BUS_ADDRESS: undefined };

let server: RunningServer;
let dataDir: string;
const cleanups: Array<() => void> = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'breeze-ux-'));
  server = await startServer({ host: '127.0.0.1', port: 0, dataDir, rateLimitPerKey: 0, logger: false });
});

afterAll(async () => {
  await server?.close();
  rmSync(dataDir, { recursive: true, force: true });
  for (const fn of cleanups) fn();
});

function seed(opts: SeedKeyOptions = {}) {
  return mintSeedKey(server.store, server.app.breeze.keys, opts);
}

function configDir(): string {
  const t = tempConfigDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

/** a config dir whose default profile holds a fresh admin key (file storage) */
async function loggedIn(): Promise<{ dir: string; apiKey: string; keyId: string }> {
  const dir = configDir();
  const s = await seed();
  const r = await runCli(['--server', server.url, 'login', '--with-key'], {
    configDir: dir,
    input: s.apiKey,
    env: NO_DBUS,
  });
  expect(r.code, r.stderr).toBe(0);
  return { dir, apiKey: s.apiKey, keyId: s.keyId };
}

describe('help', () => {
  it('breeze help, help <cmd>, keys help <sub> and --help/-h anywhere print help and exit 0', async () => {
    const dir = configDir();
    const cases: Array<[string[], RegExp]> = [
      [['help'], /Usage: breeze \[options\] \[command\]/],
      [['help', 'keys'], /Usage: breeze keys \[options\] \[command\]/],
      [['help', 'env'], /Usage: breeze env \[options\]/],
      [['keys', 'help', 'create'], /Usage: breeze keys create \[options\]/],
      [['keys', 'help'], /Usage: breeze keys \[options\] \[command\]/],
      [['--help'], /Usage: breeze \[options\] \[command\]/],
      [['-h'], /Usage: breeze \[options\] \[command\]/],
      [['keys', '--help'], /Usage: breeze keys/],
      [['keys', 'rotate', '-h'], /Usage: breeze keys rotate/],
      [['--json', 'keys', 'create', '--help'], /Usage: breeze keys create/],
      [['token', '--help'], /Usage: breeze token/],
      [['env', '-h'], /Usage: breeze env/],
      // help wins over anything else on the line, e.g. an invalid option value
      [['keys', 'create', '--expires-in', '30', '--help'], /Usage: breeze keys create/],
      [['--profile', 'keys', 'status', '-h'], /Usage: breeze status/],
    ];
    for (const [args, usage] of cases) {
      const r = await runCli(args, { configDir: dir });
      expect(r.code, `breeze ${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stdout, args.join(' ')).toMatch(usage);
    }
  });

  it('unknown commands and options, and a missing subcommand, still exit 2', async () => {
    const dir = configDir();
    for (const args of [['nosuch'], ['help', 'nosuch'], ['keys', 'nosuch'], ['keys'], ['status', '--nope']]) {
      const r = await runCli(args, { configDir: dir });
      expect(r.code, `breeze ${args.join(' ')}: ${r.stderr}`).toBe(2);
    }
  });
});

describe('durations', () => {
  it('a bare number is a usage error naming the accepted forms, for --expires-in and --grace', async () => {
    const { dir } = await loggedIn();
    for (const args of [
      ['keys', 'create', '--name', 'thirty', '--expires-in', '30'],
      ['keys', 'rotate', '--self', '--grace', '30'],
      ['keys', 'rotate', '--self', '--grace', '3600'],
    ]) {
      const r = await runCli(args, { configDir: dir, env: NO_DBUS });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/0, 90s, 15m, 24h or 30d/);
      expect(r.stdout).toBe('');
    }
    // nothing was created or rotated
    const list = await runCli(['keys', 'list', '--all', '--json'], { configDir: dir, env: NO_DBUS });
    const names = JSON.parse(list.stdout).data.map((k: { name: string }) => k.name);
    expect(names).not.toContain('thirty');
    expect(JSON.parse(list.stdout).data.every((k: { status: string }) => k.status === 'active')).toBe(true);
  });

  it('units still work, and --grace 0 stays valid', async () => {
    const { dir } = await loggedIn();
    const c = await runCli(['keys', 'create', '--name', 'h', '--expires-in', '90s', '--json'], {
      configDir: dir,
      env: NO_DBUS,
    });
    expect(c.code, c.stderr).toBe(0);
    const created = JSON.parse(c.stdout);
    const lifetime = Date.parse(created.expires_at) - Date.parse(created.created_at);
    expect(lifetime).toBeGreaterThan(85_000);
    expect(lifetime).toBeLessThan(95_000);
    const r = await runCli(['keys', 'rotate', created.key_id, '--grace', '0', '--json'], {
      configDir: dir,
      env: NO_DBUS,
    });
    expect(r.code, r.stderr).toBe(0);
  });
});

describe('--json errors are a JSON document on stdout too', () => {
  interface ErrorDoc {
    error: { code: string; message: string; exit_code: number; request_id?: string; status?: number };
  }
  async function failing(
    args: string[],
    opts: { configDir: string; env?: Record<string, string | undefined> },
    exit: number,
  ): Promise<ErrorDoc['error']> {
    const r = await runCli(args, opts);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(exit);
    expect(r.stderr).toMatch(/Error|error:/); // people still get the message on stderr
    const doc = JSON.parse(r.stdout) as ErrorDoc;
    expect(Object.keys(doc)).toEqual(['error']);
    expect(doc.error.message).toEqual(expect.any(String));
    expect(doc.error.message.length).toBeGreaterThan(0);
    expect(doc.error.exit_code).toBe(exit);
    return doc.error;
  }

  it('usage errors (commander and ours), exit 2', async () => {
    const dir = configDir();
    expect((await failing(['keys', 'list', '--nope', '--json'], { configDir: dir }, 2)).code).toBe('USAGE');
    expect((await failing(['--json', 'nosuch'], { configDir: dir }, 2)).code).toBe('USAGE');
    const bare = await failing(
      ['keys', 'create', '--name', 'x', '--expires-in', '30', '--json'],
      { configDir: dir },
      2,
    );
    expect(bare).toMatchObject({ code: 'USAGE' });
    expect(bare.message).toMatch(/30s, 30m, 30h or 30d/);
    const zero = await failing(
      ['keys', 'create', '--name', 'x', '--expires-in', '0', '--json'],
      {
        configDir: dir,
        env: { BREEZE_SERVER: server.url },
      },
      2,
    );
    expect(zero.code).toBe('USAGE');
    // --with-key takes a key as it is: --scopes would only pretend to narrow it
    const s = await seed();
    const narrowed = await runCli(
      ['--server', server.url, 'login', '--with-key', '--scopes', 'read', '--json'],
      {
        configDir: dir,
        input: s.apiKey,
      },
    );
    expect(narrowed.code, narrowed.stderr).toBe(2);
    expect(JSON.parse(narrowed.stdout)).toMatchObject({ error: { code: 'USAGE' } });
    expect(narrowed.stderr).toContain('--scopes');
    const named = await runCli(['--server', server.url, 'login', '--with-key', '--name', 'x'], {
      configDir: dir,
      input: s.apiKey,
    });
    expect(named.code, named.stderr).toBe(2);
    // a bad BREEZE_STORAGE is named as such (there was no --storage to fix)
    const env = await runCli(['--server', server.url, 'login', '--with-key'], {
      configDir: dir,
      input: s.apiKey,
      env: { BREEZE_STORAGE: 'vault' },
    });
    expect(env.code, env.stderr).toBe(2);
    expect(env.stderr).toContain('BREEZE_STORAGE');
  });

  it('a validation error names the field the server refused, on stderr (exit 2)', async () => {
    const { dir } = await loggedIn();
    const r = await runCli(['--server', server.url, 'keys', 'create', '--name', ''], {
      configDir: dir,
      env: NO_DBUS,
    });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('[VALIDATION_FAILED]');
    expect(r.stderr).toMatch(/^ {2}body\.name: \S/m);
    expect(r.stdout).toBe('');
  });

  it('not authenticated: no credential (exit 3), and a key the server refuses (the server code and request id)', async () => {
    const dir = configDir();
    const none = await failing(['--server', server.url, 'keys', 'list', '--json'], { configDir: dir }, 3);
    expect(none.code).toBe('NOT_AUTHENTICATED');
    // the hint is a command to copy whole: the profile flag inside the quotes
    const other = await runCli(['--server', server.url, '--profile', 'ci', 'status'], { configDir: dir });
    expect(other.code).toBe(3);
    expect(other.stderr).toContain('Run "breeze login --profile ci" or set BREEZE_API_KEY.');
    const refused = await failing(
      ['keys', 'list', '--json'],
      {
        configDir: dir,
        env: { BREEZE_SERVER: server.url, BREEZE_API_KEY: await revokedKey() },
      },
      3,
    );
    expect(refused.code).toBe('AUTH_REQUIRED');
    expect(refused.status).toBe(401);
    expect(refused.request_id).toMatch(/\S/);
  });

  it('forbidden and not found carry the server code and request id (exit 4)', async () => {
    const dir = configDir();
    const reader = await seed({ scopes: ['read'] });
    const forbidden = await failing(
      ['keys', 'list', '--json'],
      {
        configDir: dir,
        env: { BREEZE_SERVER: server.url, BREEZE_API_KEY: reader.apiKey },
      },
      4,
    );
    expect(forbidden).toMatchObject({ code: 'FORBIDDEN', status: 403 });
    expect(forbidden.request_id).toMatch(/\S/);
    const admin = await seed();
    const nf = await failing(
      ['keys', 'disable', 'key_01AAAAAAAAAAAAAAAAAAAAAAAA', '--json'],
      {
        configDir: dir,
        env: { BREEZE_SERVER: server.url, BREEZE_API_KEY: admin.apiKey },
      },
      4,
    );
    expect(nf).toMatchObject({ code: 'NOT_FOUND', status: 404 });
  });

  it('network errors and a needed prompt', async () => {
    const dir = configDir();
    const admin = await seed();
    const down = await failing(
      ['status', '--json'],
      {
        configDir: dir,
        env: { BREEZE_SERVER: 'http://127.0.0.1:9', BREEZE_API_KEY: admin.apiKey },
      },
      1,
    );
    expect(down.code).toBe('NETWORK_ERROR');
    const ask = await failing(
      ['keys', 'delete', admin.keyId, '--json'],
      {
        configDir: dir,
        env: { BREEZE_SERVER: server.url, BREEZE_API_KEY: admin.apiKey },
      },
      2,
    );
    expect(ask.code).toBe('USAGE');
  });

  it('a command that printed its document keeps it the only one (status --json of a refused key)', async () => {
    const dir = configDir();
    const r = await runCli(['status', '--json'], {
      configDir: dir,
      env: { BREEZE_SERVER: server.url, BREEZE_API_KEY: await revokedKey() },
    });
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stdout)).toMatchObject({ valid: false });
  });

  it('success still prints only the result', async () => {
    const { dir } = await loggedIn();
    const r = await runCli(['status', '--json'], { configDir: dir, env: NO_DBUS });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ valid: true });
  });
});

/** a well-formed key the server refuses (deleted) */
async function revokedKey(): Promise<string> {
  const k = await seed();
  const res = await fetch(`${server.url}/v1/api-keys/${k.keyId}`, {
    method: 'DELETE',
    headers: { 'xi-api-key': k.apiKey },
  });
  expect(res.status).toBeLessThan(300);
  await new Promise((r) => setTimeout(r, 1100)); // revocation bound: 1 s
  return k.apiKey;
}

describe('wording', () => {
  it('keys enable on a key with an expiry says it is enabled and when it expires, not "is expiring"', async () => {
    const { dir } = await loggedIn();
    const c = JSON.parse(
      (
        await runCli(['keys', 'create', '--name', 'exp', '--expires-in', '30d', '--json'], {
          configDir: dir,
          env: NO_DBUS,
        })
      ).stdout,
    );
    expect((await runCli(['keys', 'disable', c.key_id], { configDir: dir, env: NO_DBUS })).stderr).toMatch(
      new RegExp(`Key ${c.key_id} \\(exp\\) is disabled`),
    );
    const en = await runCli(['keys', 'enable', c.key_id], { configDir: dir, env: NO_DBUS });
    expect(en.code, en.stderr).toBe(0);
    expect(en.stderr).toContain(`Key ${c.key_id} (exp) is enabled; it expires ${c.expires_at}.`);
    expect(en.stderr).not.toMatch(/expiring/);
    // the API status values stay what API.md says
    const json = await runCli(['keys', 'enable', c.key_id, '--json'], { configDir: dir, env: NO_DBUS });
    expect(JSON.parse(json.stdout).status).toBe('expiring');
  });

  it('a prompt in a non-interactive run quotes the question whole and names the flag', async () => {
    const { dir, keyId } = await loggedIn();
    const r = await runCli(['keys', 'delete', keyId], { configDir: dir, env: NO_DBUS });
    expect(r.code).toBe(2);
    expect(r.stderr).not.toMatch(/\.:/);
    expect(r.stderr).toContain(
      `Cannot ask in a non-interactive run: "Delete key ${keyId}? It stops working at once and cannot be restored."`,
    );
    expect(r.stderr).toMatch(/^Pass --yes\.$/m);
  });

  it('keys rotate --self and keys create --save say where the key was stored, without "will not be shown again"', async () => {
    const { dir } = await loggedIn();
    const rot = await runCli(['keys', 'rotate', '--self', '--grace', '0'], { configDir: dir, env: NO_DBUS });
    expect(rot.code, rot.stderr).toBe(0);
    expect(rot.stderr).not.toMatch(/not be shown again/);
    expect(rot.stderr).toMatch(
      /Stored key key_\w+ \(brz_\w{8}…\) for profile "default" in .*credentials\.json/,
    );
    const tok = await runCli(['token'], { configDir: dir, env: NO_DBUS });
    expect(tok.stdout.trim()).toBe(rot.stdout.trim());
    const saved = await runCli(
      ['keys', 'create', '--name', 'mine', '--scopes', 'read,write,admin', '--save'],
      {
        configDir: dir,
        env: NO_DBUS,
      },
    );
    expect(saved.code, saved.stderr).toBe(0);
    expect(saved.stderr).not.toMatch(/not be shown again/);
    expect(saved.stderr).toMatch(/Stored key/);
    // not stored: the warning stays
    const plain = await runCli(['keys', 'create', '--name', 'other'], { configDir: dir, env: NO_DBUS });
    expect(plain.stderr).toMatch(/copy it now, it will not be shown again/);
    expect(plain.stderr).not.toMatch(/Stored key/);
  });

  /** The new key's own GET /v1/me status: what a user who kept the printed key would get. */
  async function statusOf(apiKey: string): Promise<number> {
    return (await fetch(`${server.url}/v1/me`, { headers: { 'xi-api-key': apiKey } })).status;
  }

  it('keys create --save and rotate --self print the new key when storing it fails, then exit 1', async () => {
    // a credentials "file" that is a directory: every write of the file store fails
    const { dir, apiKey, keyId } = await loggedIn();
    rmSync(join(dir, 'credentials.json'));
    mkdirSync(join(dir, 'credentials.json'));
    const env = { ...NO_DBUS, BREEZE_API_KEY: apiKey };

    const created = await runCli(['keys', 'create', '--name', 'kept', '--save'], { configDir: dir, env });
    expect(created.code, created.stderr).toBe(1);
    const newKey = created.stdout.trim();
    expect(newKey).toMatch(/^brz_\w+$/);
    expect(await statusOf(newKey)).toBe(200);
    expect(created.stderr).toMatch(
      /Key key_\w+ was created \(printed above\) but not stored in profile "default"/,
    );
    expect(created.stderr).toContain('breeze login --with-key');

    // --json: the one document on stdout is the created key (the error goes to stderr only)
    const json = await runCli(['--json', 'keys', 'create', '--name', 'kept2', '--save'], {
      configDir: dir,
      env,
    });
    expect(json.code, json.stderr).toBe(1);
    const doc = JSON.parse(json.stdout) as { api_key: string; key_id: string };
    expect(await statusOf(doc.api_key)).toBe(200);
    expect(json.stderr).toContain(`Key ${doc.key_id} was created`);

    // rotating the profile's own key with no grace: the old key dies, the printed one is the way in
    const rotated = await runCli(['keys', 'rotate', '--self', '--grace', '0'], { configDir: dir, env });
    expect(rotated.code, rotated.stderr).toBe(1);
    const next = rotated.stdout.trim();
    expect(next).toMatch(/^brz_\w+$/);
    expect(await statusOf(next)).toBe(200);
    expect(await statusOf(apiKey)).toBe(401);
    expect(rotated.stderr).toContain(`The previous key ${keyId} no longer works. To store it: fix the cause`);

    // a pasted key that cannot be stored is the user's own: the failed login leaves it alive
    const pasted = await runCli(['login', '--with-key'], { configDir: dir, env: NO_DBUS, input: next });
    expect(pasted.code, pasted.stderr).toBe(1);
    expect(await statusOf(next)).toBe(200);
    expect(pasted.stderr).not.toMatch(/deleted/);
  });

  /**
   * A proxy to the server that holds every `GET /v1/me` (the new key's check before it is stored)
   * for `holdMs`, calling `onHold` as it arrives.
   */
  async function holdingProxy(holdMs: number, onHold: () => void): Promise<{ url: string; close(): void }> {
    const proxy = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        if (req.method === 'GET' && req.url === '/v1/me') {
          onHold();
          await new Promise((r) => setTimeout(r, holdMs));
        }
        const headers = Object.fromEntries(
          Object.entries(req.headers).filter(([k]) => !['host', 'connection', 'content-length'].includes(k)),
        ) as Record<string, string>;
        const body = chunks.length ? Buffer.concat(chunks) : undefined;
        const answer = await fetch(`${server.url}${req.url}`, { method: req.method, headers, body });
        res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/plain' });
        res.end(Buffer.from(await answer.arrayBuffer()));
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const { port } = proxy.address() as { port: number };
    return { url: `http://127.0.0.1:${port}`, close: () => proxy.close() };
  }

  for (const signals of [1, 2]) {
    it(`keys create --save, interrupted ${signals === 1 ? 'once' : 'twice'} while storing: ${signals === 1 ? 'stores it first' : 'stops at once, the key printed (exit 130)'}`, async () => {
      const dir = configDir();
      const { apiKey } = await seed();
      let child: ReturnType<typeof spawnCli> | undefined;
      const proxy = await holdingProxy(1500, () => {
        child?.kill('SIGINT');
        if (signals === 2) setTimeout(() => child?.kill('SIGINT'), 200);
      });
      try {
        const env = { ...NO_DBUS, BREEZE_API_KEY: apiKey, BREEZE_STORAGE: 'file' };
        child = spawnCli(['--server', proxy.url, 'keys', 'create', '--name', 'held', '--save'], {
          configDir: dir,
          env,
        });
        const r = await collect(child);
        const newKey = r.stdout.trim();
        expect(newKey).toMatch(/^brz_\w+$/);
        expect(await statusOf(newKey)).toBe(200);
        expect(r.stderr).toContain('Storing the new key before stopping');
        const token = await runCli(['--server', proxy.url, 'token'], { configDir: dir, env: NO_DBUS });
        if (signals === 1) {
          expect(r.code, r.stderr).toBe(0);
          expect(r.stderr).toMatch(/Stored key/);
          expect(token.stdout.trim()).toBe(newKey);
        } else {
          expect(r.code, r.stderr).toBe(130);
          expect(r.stderr).toMatch(/copy it now, it will not be shown again\.\nInterrupted\.\n$/);
        }
      } finally {
        proxy.close();
      }
    });
  }

  it('BREEZE_API_KEY=garbage: "not a Breeze key (malformed)", exit 3, nothing of it echoed or sent', async () => {
    let connections = 0;
    const trap: Server = createServer((sock) => {
      connections++;
      sock.destroy();
    });
    await new Promise<void>((r) => trap.listen(0, '127.0.0.1', r));
    const port = (trap.address() as { port: number }).port;
    const secret = 'AKIAsupersecretvalue-1234567890';
    const dir = configDir();
    try {
      for (const args of [['status'], ['status', '--json'], ['keys', 'list'], ['token'], ['env']]) {
        const r = await runCli(args, {
          configDir: dir,
          env: { BREEZE_API_KEY: secret, BREEZE_SERVER: `http://127.0.0.1:${port}` },
        });
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(3);
        expect(r.stderr).toContain('BREEZE_API_KEY is not a Breeze key (malformed)');
        expect(r.stderr).not.toMatch(/deleted, disabled or expired/);
        for (const part of [secret.slice(0, 4), secret.slice(0, 12), secret.slice(-6)]) {
          expect(r.stdout + r.stderr).not.toContain(part);
        }
      }
      // also a brz_-looking value with a wrong checksum
      const almost = `brz_${'A'.repeat(46)}`;
      const r = await runCli(['status'], {
        configDir: dir,
        env: { BREEZE_API_KEY: almost, BREEZE_SERVER: `http://127.0.0.1:${port}` },
      });
      expect(r.code).toBe(3);
      expect(r.stderr + r.stdout).not.toContain('brz_AAAA');
      expect(connections).toBe(0);
    } finally {
      trap.close();
    }
  });
});
