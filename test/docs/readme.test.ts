import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BIN,
  type CliResult,
  cliEnv,
  collect,
  runCli,
  seedKeyInDataDir,
  tempConfigDir,
} from '../helpers/cli.js';
import { requirePart } from '../helpers/require.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const root = join(import.meta.dirname, '..', '..');
const README = readFileSync(join(root, 'README.md'), 'utf8');

/** The README's ```sh block that contains `marker`, verbatim. */
function readmeBlock(marker: string): string {
  const blocks = [...README.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  const found = blocks.filter((b) => b.includes(marker));
  if (found.length !== 1)
    throw new Error(`README.md: ${found.length} sh blocks contain ${JSON.stringify(marker)}`);
  return found[0] as string;
}

function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

// `breeze` on PATH, as after `npm install -g .`
const binDir = mkdtempSync(join(tmpdir(), 'breeze-readme-bin-'));
writeFileSync(
  join(binDir, 'breeze'),
  `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} "$@"\n`,
);
chmodSync(join(binDir, 'breeze'), 0o755);
const PATH = `${binDir}:${process.env.PATH ?? ''}`;
afterAll(() => rmSync(binDir, { recursive: true, force: true }));

function sh(script: string, env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<CliResult> {
  return collect(
    spawn('bash', ['-euo', 'pipefail', '-c', script], { env, stdio: ['pipe', 'pipe', 'pipe'] }),
    {
      timeoutMs,
    },
  );
}

const NO_DBUS = { DBUS_SESSION_BUS_ADDRESS: undefined, BREEZE_STORAGE: 'file' };
const skipCurl = requirePart('curl', has('curl'), 'curl is not installed');

describe.skipIf(skipCurl)('README: calling the API with curl', () => {
  let server: TestServer;
  let url: string;
  beforeAll(async () => {
    server = await startTestServer();
    url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(() => server.close());

  it('against a served Breeze (BREEZE_SERVER set), the example prints /v1/me', async () => {
    const t = tempConfigDir();
    try {
      const { apiKey } = await server.seedKey({ email: 'readme-served@example.com' });
      const env = { ...NO_DBUS, BREEZE_SERVER: url, PATH };
      const login = await runCli(['login', '--with-key'], { configDir: t.dir, input: apiKey, env });
      expect(login.code, login.stderr).toBe(0);
      const r = await sh(readmeBlock('"$BREEZE_SERVER/v1/me"'), cliEnv(t.dir, env));
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).user.email).toBe('readme-served@example.com');
    } finally {
      t.cleanup();
    }
  });

  it('on the embedded default (BREEZE_SERVER unset), the example serves the same data and prints /v1/me', async () => {
    const t = tempConfigDir();
    try {
      mkdirSync(join(t.dir, 'server'), { recursive: true });
      const { apiKey } = await seedKeyInDataDir(join(t.dir, 'server'), {
        email: 'readme-embedded@example.com',
      });
      const env = { ...NO_DBUS, PATH };
      const login = await runCli(['login', '--with-key', '--json'], { configDir: t.dir, input: apiKey, env });
      expect(login.code, login.stderr).toBe(0);
      expect(JSON.parse(login.stdout).server).toBe('embedded');
      // verbatim but for the port: 4455 may be taken on a machine that runs tests in parallel
      const block = readmeBlock('breeze serve --port 4455');
      const port = String(await freePort());
      const r = await sh(block.replaceAll('4455', port), cliEnv(t.dir, env));
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).user.email).toBe('readme-embedded@example.com');
      // `kill $!` stopped the server it started
      await new Promise((res) => setTimeout(res, 500));
      await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    } finally {
      t.cleanup();
    }
  });
});

const keyringAvailable = has('dbus-run-session') && has('gnome-keyring-daemon') && has('secret-tool');
const skipKeyring = requirePart(
  'Secret Service (gnome-keyring under dbus-run-session)',
  keyringAvailable,
  'dbus-run-session, gnome-keyring-daemon or secret-tool not installed',
);

describe.skipIf(skipKeyring)(
  "README: reading the key with secret-tool (libsecret attribute 'username')",
  () => {
    it("the README's secret-tool line prints the key breeze login stored in the keychain", async () => {
      const t = tempConfigDir();
      try {
        mkdirSync(join(t.dir, 'server'), { recursive: true });
        const { apiKey } = await seedKeyInDataDir(join(t.dir, 'server'), {
          email: 'readme-keychain@example.com',
        });
        const lookup = readmeBlock('secret-tool lookup').trim();
        const script =
          'echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null; ' +
          `breeze login --with-key --storage keychain >&2; ` +
          // a newline before ")": the README line ends with a comment
          `printf 'readme=%s\\n' "$(\n${lookup}\n)"; ` +
          `printf 'account=%s\\n' "$(secret-tool lookup service breeze account default@embedded || true)"`;
        const child = spawn('dbus-run-session', ['--', 'sh', '-c', script], {
          env: cliEnv(t.dir, { PATH }),
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        const r = await collect(child, { input: apiKey, timeoutMs: 60_000 });
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).toMatch(/keychain/);
        expect(r.stdout).toContain(`readme=${apiKey}\n`);
        // the attribute the README used to name finds nothing
        expect(r.stdout).toContain('account=\n');
      } finally {
        t.cleanup();
      }
    });
  },
);
