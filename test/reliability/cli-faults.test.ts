import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  type AddressInfo,
  createServer as createTcpServer,
  connect as netConnect,
  type Server as TcpServer,
} from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, collect, runCli, spawnCli, tempConfigDir, waitForOutput } from '../helpers/cli.js';
import { requirePart } from '../helpers/require.js';
import { distReady, ROOT, type ServerProcess, spawnFixtureServer } from './server-process.js';

/**
 * What the CLI does when things around it break: the server is unreachable, answers 500 or garbage,
 * config.json / credentials.json are corrupt, the OS keychain is locked, the user hits Ctrl-C while
 * a login waits. Each must end with a clear message on stderr (no stack trace), nothing on stdout,
 * the documented exit code (CLI.md: 0 ok, 1 failure, 2 usage, 3 not authenticated, 4 forbidden or
 * not found, 130 interrupted), and no file silently overwritten.
 */
const cliBuilt = existsSync(resolve(ROOT, 'dist/cli/main.js'));
const skip = requirePart('dist build', distReady && cliBuilt, 'dist/ is missing (the build failed?)');

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}
const keyringParts = ['dbus-run-session', 'gnome-keyring-daemon', 'gdbus'].filter((c) => !has(c));
const skipKeyring =
  skip ||
  requirePart(
    'Secret Service (gnome-keyring under dbus-run-session)',
    keyringParts.length === 0,
    `missing: ${keyringParts.join(', ')}`,
  );

/** A message for a person: no stack trace, no internal error names. */
function expectCleanError(stderr: string): void {
  expect(stderr).toMatch(/^Error: /m);
  expect(stderr).not.toMatch(/^\s+at .+\(.+:\d+:\d+\)$/m);
  expect(stderr).not.toMatch(
    /TypeError|ReferenceError|Cannot read properties|undefined|Spread syntax|is not a function|is not iterable/,
  );
}

describe.skipIf(skip)('CLI under faults', () => {
  let server: ServerProcess;
  const dataDir = mkdtempSync(join(tmpdir(), 'breeze-clifaults-'));
  let adminKey = '';
  let broken: Server;
  let brokenUrl = '';
  let deadUrl = '';

  beforeAll(async () => {
    server = await spawnFixtureServer(dataDir, { seedEmail: 'faults@example.com' });
    adminKey = server.seedKey!;
    // a broken server: what a crashed deployment, a proxy error page or a half-dead backend send
    broken = createServer((req, res) => brokenRoutes[currentMode]!(req, res));
    await new Promise<void>((r) => broken.listen(0, '127.0.0.1', r));
    brokenUrl = `http://127.0.0.1:${(broken.address() as AddressInfo).port}`;
    // a port nobody listens on
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    deadUrl = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
    await new Promise((r) => probe.close(r));
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    await new Promise((r) => broken?.close(r));
    rmSync(dataDir, { recursive: true, force: true });
  });

  let currentMode = 'internal';
  let pages = 0;
  let hugeSent = 0;
  const brokenRoutes: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
    internal: (_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json', 'x-request-id': 'req_brokenserver1' });
      res.end(
        JSON.stringify({
          error: {
            code: 'INTERNAL',
            message: 'Internal server error.',
            statusCode: 500,
            category: 'SERVER',
            request_id: 'req_brokenserver1',
          },
        }),
      );
    },
    'html-502': (_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html><body><h1>502 Bad Gateway</h1></body></html>');
    },
    'truncated-json': (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"user": {"id": "usr_1", "em');
    },
    'wrong-shape': (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"data": 42, "user": null, "auth": "yes"}');
    },
    'empty-500': (_req, res) => {
      res.writeHead(500);
      res.end();
    },
    reset: (req) => {
      req.socket.destroy();
    },
    'endless-pages': (_req, res) => {
      pages++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ data: [], next_cursor: `cursor${pages}` }));
    },
    // 64 MiB of one JSON string: far beyond any real answer; counts what the client accepted
    'huge-body': (req, res) => {
      const total = 64 * 1048576;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(total) });
      const chunk = Buffer.alloc(1048576, 0x61);
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          sent += chunk.length;
          hugeSent = sent;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      req.socket.on('close', () => res.destroy());
      pump();
    },
    'half-body': (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '500' });
      res.write('{"data": [');
      setTimeout(() => res.socket?.destroy(), 50);
    },
  };

  /** A fresh admin key of the seeded user, so each rotation test rotates its own key. */
  async function mintKey(): Promise<{ apiKey: string; keyId: string }> {
    const res = await fetch(`${server.url}/v1/api-keys`, {
      method: 'POST',
      headers: { 'xi-api-key': adminKey, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'rotate me', scopes: ['read', 'write', 'admin'] }),
    });
    const b = (await res.json()) as { api_key: string; key_id: string };
    return { apiKey: b.api_key, keyId: b.key_id };
  }

  async function cli(args: string[], env: Record<string, string | undefined> = {}, input?: string) {
    const cfg = tempConfigDir();
    try {
      return await runCli(args, { configDir: cfg.dir, env, input, timeoutMs: 40_000 });
    } finally {
      cfg.cleanup();
    }
  }

  it('says the server is unreachable, with exit 1', async () => {
    const commands = [['status'], ['keys', 'create', '--name', 'x']];
    const results = await Promise.all(
      commands.map((args) => cli(['--server', deadUrl, ...args], { BREEZE_API_KEY: adminKey })),
    );
    for (const [i, r] of results.entries()) {
      expect(r.code, `${commands[i]!.join(' ')}: ${r.stderr}`).toBe(1);
      expect(r.stdout).toBe('');
      expectCleanError(r.stderr);
      expect(r.stderr).toContain(deadUrl.replace('http://', ''));
      expect(r.stderr).toMatch(/reach|connect|refused/i);
    }
  }, 60_000);

  it.each([
    ['internal', /INTERNAL|server error/i],
    ['empty-500', /500/],
    ['html-502', /502/],
    ['truncated-json', /JSON|response/i],
    ['reset', /closed|reset|reach|socket/i],
    ['half-body', /closed|reset|terminated|response|socket/i],
  ])(
    'survives a broken server (%s): clear message, exit 1',
    async (mode, pattern) => {
      currentMode = mode;
      for (const args of [['status'], ['keys', 'list']]) {
        const r = await cli(['--server', brokenUrl, ...args], { BREEZE_API_KEY: adminKey });
        expect(r.code, `${mode} ${args.join(' ')}: ${r.stderr}`).toBe(1);
        expect(r.stdout).toBe('');
        expectCleanError(r.stderr);
        expect(r.stderr).toMatch(pattern);
        // the key in the environment is never echoed back
        expect(r.stderr + r.stdout).not.toContain(adminKey.slice(12));
      }
    },
    60_000,
  );

  /** A 200 whose body is not the documented shape is reported as an unexpected response. */
  it('a server answering 200 with the wrong JSON shape gets a clear message', async () => {
    currentMode = 'wrong-shape';
    const r = await cli(['--server', brokenUrl, 'keys', 'list'], { BREEZE_API_KEY: adminKey });
    expect(r.code).toBe(1);
    expectCleanError(r.stderr);
    expect(r.stderr).not.toMatch(/Spread syntax|iterable|is not a function/);
    expect(r.stderr).toMatch(/unexpected|response/i);
  }, 30_000);

  /** A server that never stops handing out cursors (or repeats one) cannot make `keys list` loop forever. */
  it('a server paging forever does not hang `keys list`', async () => {
    currentMode = 'endless-pages';
    pages = 0;
    const cfg = tempConfigDir();
    try {
      const r = await runCli(['--server', brokenUrl, 'keys', 'list'], {
        configDir: cfg.dir,
        env: { BREEZE_API_KEY: adminKey },
        timeoutMs: 6000,
      });
      expect(r.signal, `still paging after 6 s (${pages} pages fetched)`).toBeNull();
      expect(r.code).toBe(1);
      expectCleanError(r.stderr);
    } finally {
      cfg.cleanup();
    }
  }, 30_000);

  /** The client stops reading past 4 MiB instead of buffering an endless body. */
  it('an oversized answer is cut short, not read whole into memory', async () => {
    currentMode = 'huge-body';
    hugeSent = 0;
    const r = await cli(['--server', brokenUrl, 'status'], { BREEZE_API_KEY: adminKey });
    expect(r.code).toBe(1);
    expectCleanError(r.stderr);
    expect(hugeSent, `the client accepted ${hugeSent} bytes`).toBeLessThan(16 * 1048576);
  }, 30_000);

  it('maps the server’s 401 / 403 / 404 to exit 3 / 4 / 4', async () => {
    const url = server.url;
    const bogus = 'brz_' + 'A'.repeat(40);
    // a well-formed key the server does not know
    const { generateApiKey } = await import('../../src/core/api-key.js');
    let r = await cli(['--server', url, 'keys', 'list'], { BREEZE_API_KEY: generateApiKey() });
    expect(r.code, r.stderr).toBe(3);
    expectCleanError(r.stderr);
    r = await cli(['--server', url, 'keys', 'list'], { BREEZE_API_KEY: bogus });
    expect([2, 3]).toContain(r.code);
    r = await cli(['--server', url, 'keys', 'disable', 'key_01J0000000000000000000000'], {
      BREEZE_API_KEY: adminKey,
    });
    expect(r.code, r.stderr).toBe(4);
    expectCleanError(r.stderr);
    const created = await cli(
      ['--server', url, '--json', 'keys', 'create', '--name', 'ro', '--scopes', 'read'],
      {
        BREEZE_API_KEY: adminKey,
      },
    );
    expect(created.code, created.stderr).toBe(0);
    const readOnly = JSON.parse(created.stdout).api_key as string;
    r = await cli(['--server', url, 'keys', 'list'], { BREEZE_API_KEY: readOnly });
    expect(r.code, r.stderr).toBe(4);
    expectCleanError(r.stderr);
  }, 60_000);

  describe('corrupt files in the config dir', () => {
    const cfg = tempConfigDir();
    const good: Record<string, Buffer> = {};
    afterAll(() => cfg.cleanup());
    const run = (args: string[], input?: string) =>
      runCli(['--server', server.url, ...args], { configDir: cfg.dir, input, timeoutMs: 40_000 });

    /** A logged-in config dir (key in credentials.json), restored before each corruption. */
    async function loggedIn(): Promise<void> {
      if (!good['config.json']) {
        const r = await run(['login', '--with-key', '--storage', 'file'], `${adminKey}\n`);
        expect(r.code, r.stderr).toBe(0);
        for (const f of ['config.json', 'credentials.json']) good[f] = readFileSync(join(cfg.dir, f));
      }
      for (const [f, bytes] of Object.entries(good)) writeFileSync(join(cfg.dir, f), bytes, { mode: 0o600 });
    }

    const corruptions: Array<[string, string | Buffer]> = [
      ['truncated JSON', '{"version":1,"profiles":{'],
      ['binary garbage', Buffer.from([0x00, 0xff, 0xfe, 0x13, 0x37])],
    ];

    it.each(corruptions)(
      'config.json: %s -> clear error naming the file, file untouched',
      async (_n, bytes) => {
        await loggedIn();
        const file = join(cfg.dir, 'config.json');
        writeFileSync(file, bytes);
        const before = readFileSync(file);
        // logging in again must not silently replace a file it cannot read either
        for (const [args, input] of [
          [['token']],
          [['logout']],
          [['login', '--with-key', '--storage', 'file'], `${adminKey}\n`],
        ] as Array<[string[], string?]>) {
          const r = await run(args, input);
          expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(1);
          expect(r.stdout).toBe('');
          expectCleanError(r.stderr);
          expect(r.stderr).toContain(file);
          expect(readFileSync(file).equals(before), `${args.join(' ')} rewrote config.json`).toBe(true);
        }
      },
      60_000,
    );

    it('credentials.json: binary garbage -> an error, the file untouched, no key printed', async () => {
      await loggedIn();
      const file = join(cfg.dir, 'credentials.json');
      writeFileSync(file, corruptions[1]![1]);
      const before = readFileSync(file);
      for (const [args, input] of [
        [['token']],
        [['login', '--with-key', '--storage', 'file'], `${adminKey}\n`],
      ] as Array<[string[], string?]>) {
        const r = await run(args, input);
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(1);
        expect(r.stdout).toBe('');
        expect(r.stderr).toMatch(/^Error: /m);
        expect(readFileSync(file).equals(before), `${args.join(' ')} rewrote credentials.json`).toBe(true);
      }
    }, 60_000);

    /** The message names the broken file and never quotes its bytes (a damaged file may hold a key). */
    it('credentials.json: the error names the file', async () => {
      await loggedIn();
      writeFileSync(join(cfg.dir, 'credentials.json'), Buffer.from([0x00, 0xff, 0x20, 0x67]));
      const r = await run(['token']);
      expect(r.stderr).toContain('credentials.json');
    }, 30_000);
  });

  it.each([
    ['login --no-browser', ['--no-browser']],
    ['login (browser, loopback redirect)', []],
  ] as const)(
    'Ctrl-C while `%s` waits: exit 130, "Interrupted", nothing written or left listening',
    async (_n, extra) => {
      const cfg = tempConfigDir();
      try {
        const child = spawnCli(['--server', server.url, 'login', ...extra, '--storage', 'file'], {
          configDir: cfg.dir,
          env: { BREEZE_BROWSER: 'none' },
        });
        let stderr = '';
        child.stderr!.setEncoding('utf8').on('data', (d: string) => {
          stderr += d;
        });
        child.stdin!.end();
        await waitForOutput(child, /[B-Z]{4}-[B-Z]{4}/);
        // the loopback listener the browser would be sent back to (from the login's redirect_uri)
        const db = new Database(join(dataDir, 'breeze.db'), { readonly: true });
        const row = db
          .prepare('select redirect_uri from cli_logins order by created_at desc limit 1')
          .get() as {
          redirect_uri: string | null;
        };
        db.close();
        expect(row.redirect_uri === null).toBe(extra.length > 0);
        const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
          child.once('close', (code, signal) => r({ code, signal })),
        );
        const t0 = Date.now();
        child.kill('SIGINT');
        const { code } = await exited;
        expect(code).toBe(130);
        expect(Date.now() - t0).toBeLessThan(5000);
        expect(stderr).toMatch(/Interrupted/);
        expect(stderr).not.toMatch(/^\s+at /m);
        for (const f of ['config.json', 'credentials.json']) expect(existsSync(join(cfg.dir, f))).toBe(false);
        // no stray temporary files either
        if (existsSync(cfg.dir)) expect(readdirSync(cfg.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
        if (row.redirect_uri) {
          const u = new URL(row.redirect_uri);
          const refused = await new Promise<boolean>((r) => {
            const sock = netConnect({ host: u.hostname, port: Number(u.port) });
            sock.once('connect', () => {
              sock.destroy();
              r(false);
            });
            sock.once('error', () => r(true));
          });
          expect(refused, `${u.origin} still accepts connections after the CLI exited`).toBe(true);
        }
      } finally {
        cfg.cleanup();
      }
    },
    30_000,
  );

  /**
   * A TCP proxy in front of the real server that forwards everything, except that once a request
   * line matches `hold`, the server's answer on that connection is kept back (the server has done
   * the work; the CLI never hears of it): the window where an interrupted CLI could lose a key.
   */
  async function holdingProxy(target: string, hold: RegExp) {
    const t = new URL(target);
    let onHeld: () => void = () => {};
    const held = new Promise<void>((r) => {
      onHeld = r;
    });
    const proxy: TcpServer = createTcpServer((client) => {
      const upstream = netConnect({ host: t.hostname, port: Number(t.port) });
      let holding = false;
      let pendingUp = '';
      client.on('data', (d: Buffer) => {
        pendingUp += d.toString('latin1');
        if (hold.test(pendingUp)) holding = true;
        if (pendingUp.length > 4096) pendingUp = pendingUp.slice(-4096);
        upstream.write(d);
      });
      upstream.on('data', (d: Buffer) => {
        if (holding) onHeld();
        else client.write(d);
      });
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    return {
      url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
      held,
      close: () => new Promise((r) => proxy.close(r)),
    };
  }

  it.each([
    ['SIGKILL', null],
    ['SIGINT', 130],
  ] as const)(
    '%s during `keys rotate --self` once the server rotated: the stored key still works',
    async (signal, exit) => {
      const proxy = await holdingProxy(server.url, /POST \/v1\/api-keys\/[^ ]+\/rotate /);
      const cfg = tempConfigDir();
      try {
        const mine = await mintKey();
        const login = await runCli(['--server', proxy.url, 'login', '--with-key', '--storage', 'file'], {
          configDir: cfg.dir,
          input: `${mine.apiKey}\n`,
        });
        expect(login.code, login.stderr).toBe(0);
        const files = () =>
          ['config.json', 'credentials.json'].map((f) => readFileSync(join(cfg.dir, f), 'utf8'));
        const before = files();
        const child = spawnCli(['--server', proxy.url, 'keys', 'rotate', '--self'], { configDir: cfg.dir });
        const done = collect(child, { timeoutMs: 20_000 });
        await proxy.held;
        child.kill(signal);
        const r = await done;
        if (exit === null) expect(r.signal).toBe('SIGKILL');
        else expect(r.code).toBe(exit);
        // nothing half-written: the files are exactly as before and still parse
        expect(files()).toEqual(before);
        for (const f of files()) JSON.parse(f);
        expect(readdirSync(cfg.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
        // the server did rotate (the CLI never heard of the new key)...
        const list = (await (
          await fetch(`${server.url}/v1/api-keys?limit=200`, { headers: { 'xi-api-key': adminKey } })
        ).json()) as { data: Array<{ rotated_from: string | null }> };
        expect(list.data.some((k) => k.rotated_from === mine.keyId)).toBe(true);
        // ...and the stored (old) key still works during the default grace period
        const status = await runCli(['--server', proxy.url, 'status'], { configDir: cfg.dir });
        expect(status.code, status.stderr).toBe(0);
        expect(status.stdout).toMatch(/accepts this key|valid/i);
      } finally {
        cfg.cleanup();
        await proxy.close();
      }
    },
    60_000,
  );

  describe.skipIf(skipKeyring)('a locked OS keychain (gnome-keyring, Secret Service)', () => {
    it('refuses to store a key (exit 1, says so, hints --storage file) and reads nothing out of it', async () => {
      const home = mkdtempSync(join(tmpdir(), 'breeze-keyring-'));
      const cfgDir = join(home, 'config');
      mkdirSync(home, { recursive: true });
      try {
        const base = ['--server', server.url];
        const plan = {
          home,
          steps: [
            { cli: [...base, 'login', '--with-key', '--storage', 'keychain'], input: `${adminKey}\n` },
            { cli: [...base, 'token'] },
            { lock: true },
            { cli: [...base, 'token'] },
            { cli: [...base, 'status'] },
            { cli: [...base, 'login', '--with-key', '--storage', 'keychain'], input: `${adminKey}\n` },
          ],
        };
        const r = spawnSync(
          'dbus-run-session',
          ['--', process.execPath, join(ROOT, 'test/fixtures/reliability-keyring.mjs'), JSON.stringify(plan)],
          {
            env: cliEnv(cfgDir),
            encoding: 'utf8',
            timeout: 90_000,
          },
        );
        const line = r.stdout.trim().split('\n').pop() ?? '';
        const out = JSON.parse(line) as {
          error?: string;
          results: Array<{
            code: number;
            stdout: string;
            stderr: string;
            ms: number;
            config: string | null;
            credentials: string | null;
            lock?: boolean;
          }>;
        };
        expect(out.error).toBeUndefined();
        const [login, tokenUnlocked, lock, tokenLocked, statusLocked, loginLocked] = out.results;
        // unlocked: the key goes into the keychain, not into a file
        expect(login!.code, login!.stderr).toBe(0);
        expect(login!.credentials).toBeNull();
        expect(tokenUnlocked!.stdout.trim()).toBe(adminKey);
        expect(lock!.lock).toBe(true);
        const configBefore = login!.config;
        // locked: no key comes out, the command says it is about the keychain, exits 3, promptly
        for (const step of [tokenLocked!, statusLocked!]) {
          expect(step.code, step.stderr).toBe(3);
          expect(step.stdout).not.toContain(adminKey);
          expectCleanError(step.stderr);
          expect(step.stderr).toMatch(/keychain/i);
          expect(step.ms).toBeLessThan(15_000);
          expect(step.config).toBe(configBefore);
        }
        // storing into a locked keychain fails clearly and leaves config.json as it was
        expect(loginLocked!.code, loginLocked!.stderr).toBe(1);
        expectCleanError(loginLocked!.stderr);
        expect(loginLocked!.stderr).toMatch(/keychain/i);
        expect(loginLocked!.stderr).toMatch(/--storage file|BREEZE_STORAGE=file/);
        expect(loginLocked!.config).toBe(configBefore);
        expect(loginLocked!.credentials).toBeNull();
        console.log(
          `[cli-faults] locked keychain: token -> exit ${tokenLocked!.code} "${tokenLocked!.stderr.split('\n')[0]}"; ` +
            `login --storage keychain -> exit ${loginLocked!.code}`,
        );
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
    }, 120_000);
  });
});
