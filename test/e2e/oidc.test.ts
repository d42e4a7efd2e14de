/**
 * CI identity end to end (issue 15, OIDC part): the built CLI against `breeze serve
 * --allow-http-issuers` on SQLite and on PostgreSQL, a local OIDC issuer (discovery + JWKS on
 * 127.0.0.1, keys made with jose) and a local stand-in for the GitHub Actions token endpoint. A
 * GitHub-Actions-style run: trust added with the CLI, `login --oidc` with the Actions variables, a
 * call with the short-lived key, the key refused after its TTL, a replayed token refused; the
 * GitLab variable, `--oidc-token-file`, `--save` and `run --oidc`.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli, spawnCli, tempConfigDir, waitForOutput } from '../helpers/cli.js';
import { startTestIssuer, type TestIssuer } from '../helpers/oidc-issuer.js';
import { postgresAvailability, startPostgres, type TestPostgres, uniqueDbName } from '../helpers/postgres.js';
import { requirePart } from '../helpers/require.js';

// every step spawns the CLI; on a loaded machine one takes seconds
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const FILE_STORAGE = { DBUS_SESSION_BUS_ADDRESS: undefined, BREEZE_STORAGE: 'file' };
const PEPPER = 'oidc-e2e-pepper';
const pgAvail = postgresAvailability();
const skipPostgres = requirePart('PostgreSQL', pgAvail.available, pgAvail.why);
let pg: TestPostgres | undefined;
let issuer: TestIssuer;

beforeAll(async () => {
  issuer = await startTestIssuer();
});
afterAll(async () => {
  await issuer?.close();
  await pg?.stop();
});

it('--oidc-token-file that is endless (a device, a pipe) is read up to the size cap, then refused', async () => {
  const tmp = tempConfigDir();
  // /dev/zero reports size 0, like a pipe: only a bounded read stops it (an unbounded one runs out of memory)
  const endless = await runCli(
    ['--server', 'http://127.0.0.1:9', 'login', '--oidc', '--oidc-token-file', '/dev/zero'],
    { configDir: tmp.dir, env: FILE_STORAGE },
  );
  expect(endless.code, endless.stderr).toBe(2);
  expect(endless.stderr).toMatch(/Cannot read the OIDC token file \/dev\/zero \(too large\)/);
  expect(endless.stdout).toBe('');
  tmp.cleanup();
});

async function seed(target: { dataDir?: string; databaseUrl?: string }, email: string): Promise<string> {
  const { openStore } = await import('../../src/server/store/index.js');
  const { resolvePepper } = await import('../../src/server/config.js');
  const { createSecretHasher } = await import('../../src/core/hash.js');
  const { KeyService } = await import('../../src/server/key-service.js');
  const { VerificationCache } = await import('../../src/server/verification-cache.js');
  const { mintSeedKey } = await import('../helpers/server.js');
  const store = await openStore(target);
  try {
    const pepper = target.dataDir ? resolvePepper(target.dataDir) : Buffer.from(PEPPER, 'utf8');
    const keys = new KeyService(
      store,
      createSecretHasher(pepper),
      new VerificationCache(0),
      () => new Date(),
    );
    return (await mintSeedKey(store, keys, { email })).apiKey;
  } finally {
    await store.close();
  }
}

const ENGINES = [
  { name: 'sqlite', skip: false },
  { name: 'postgres', skip: skipPostgres },
] as const;

for (const engine of ENGINES) {
  describe.skipIf(engine.skip)(`CI identity end to end on ${engine.name}`, () => {
    let tmp: ReturnType<typeof tempConfigDir>;
    let serverProc: ChildProcess;
    let url: string;
    let ownerDir: string;
    let ownerKey: string;
    const ciDirs: string[] = [];

    const ciDir = () => {
      const d = join(tmp.dir, '..', `ci-${ciDirs.length}`);
      ciDirs.push(d);
      return d;
    };
    const actionsEnv = () => ({
      ...FILE_STORAGE,
      ACTIONS_ID_TOKEN_REQUEST_URL: issuer.actionsUrl,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: issuer.actionsRequestToken,
      GITHUB_ACTIONS: 'true',
      CI: 'true',
    });
    const status = async (apiKey: string, path = '/v1/me') =>
      (await fetch(`${url}${path}`, { headers: { 'xi-api-key': apiKey } })).status;

    beforeAll(async () => {
      tmp = tempConfigDir();
      const target: { dataDir?: string; databaseUrl?: string } = {};
      const args = ['serve', '--port', '0', '--rate-limit-per-key', '0', '--allow-http-issuers'];
      if (engine.name === 'postgres') {
        pg ??= await startPostgres();
        target.databaseUrl = await pg.createDatabase(uniqueDbName('oidc_e2e'));
        args.push('--database-url', target.databaseUrl);
      } else {
        target.dataDir = join(tmp.dir, '..', 'server-data');
        args.push('--data-dir', target.dataDir);
      }
      serverProc = spawnCli(args, {
        configDir: join(tmp.dir, '..', 'serve-config'),
        env: { BREEZE_PEPPER: engine.name === 'postgres' ? PEPPER : undefined },
      });
      serverProc.stdout?.resume();
      url = (await waitForOutput(serverProc, /listening on (http:\/\/127\.0\.0\.1:\d+)/))[1] as string;
      ownerKey = await seed(target, `owner-${engine.name}@example.com`);
      ownerDir = tmp.dir;
      const login = await runCli(['--server', url, 'login', '--with-key'], {
        configDir: ownerDir,
        input: `${ownerKey}\n`,
        env: FILE_STORAGE,
      });
      expect(login.code, login.stderr).toBe(0);
    });

    afterAll(async () => {
      if (serverProc && serverProc.exitCode === null) {
        const done = new Promise((r) => serverProc.once('exit', r));
        serverProc.kill('SIGTERM');
        await done;
      }
      tmp?.cleanup();
    });

    const owner = (args: string[]) =>
      runCli(['--server', url, ...args], { configDir: ownerDir, env: FILE_STORAGE });

    it('a GitHub-Actions-style run: trust via the CLI, login --oidc, a call, replay refused, TTL', async () => {
      const add = await owner([
        'oidc',
        'trust',
        'add',
        '--issuer',
        issuer.url,
        '--claim',
        'repository=acme/api',
        '--claim',
        'ref=refs/heads/*',
        '--scopes',
        'read,write',
        '--ttl',
        '10m',
        '--json',
      ]);
      expect(add.code, add.stderr).toBe(0);
      const trust = JSON.parse(add.stdout) as Record<string, unknown>;
      expect(trust).toMatchObject({
        issuer: issuer.url,
        audience: url,
        claims: { repository: 'acme/api', ref: 'refs/heads/*' },
        scopes: ['read', 'write'],
        ttl_s: 600,
      });
      const list = await owner(['oidc', 'trust', 'list']);
      expect(list.code).toBe(0);
      expect(list.stdout).toContain(trust.id as string);
      expect(list.stdout).toContain('repository=acme/api');

      // the CI job: no stored secret, only the runner's variables
      const dir = ciDir();
      const ci = await runCli(['--server', url, 'login', '--oidc'], { configDir: dir, env: actionsEnv() });
      expect(ci.code, ci.stderr).toBe(0);
      const apiKey = ci.stdout.trim();
      expect(apiKey).toMatch(/^brz_[0-9A-Za-z]{46}$/);
      expect(ci.stderr).toMatch(/not saved/);
      // the audience asked of GitHub is the server URL by default
      expect(issuer.requestedAudiences.at(-1)).toBe(url);
      expect(await status(apiKey)).toBe(200);
      const me = (await (await fetch(`${url}/v1/me`, { headers: { 'xi-api-key': apiKey } })).json()) as {
        auth: { key_id: string; scopes: string[] };
      };
      expect(me.auth.scopes).toEqual(['read', 'write']);
      const key = (await (
        await fetch(`${url}/v1/api-keys/${me.auth.key_id}`, { headers: { 'xi-api-key': apiKey } })
      ).json()) as { created_via: string; expires_at: string };
      expect(key.created_via).toBe('oidc');
      expect(Date.parse(key.expires_at) - Date.now()).toBeGreaterThan(500_000);
      expect(Date.parse(key.expires_at) - Date.now()).toBeLessThanOrEqual(600_000);
      // nothing was stored
      expect(existsSync(join(dir, 'credentials.json'))).toBe(false);

      // one token, one key: the same token a second time is refused (exit 3)
      const tokenFile = join(tmp.dir, '..', 'token.jwt');
      writeFileSync(
        tokenFile,
        await issuer.sign({ aud: url, repository: 'acme/api', ref: 'refs/heads/main' }),
      );
      const first = await runCli(['--server', url, 'login', '--oidc', '--oidc-token-file', tokenFile], {
        configDir: ciDir(),
        env: FILE_STORAGE,
      });
      expect(first.code, first.stderr).toBe(0);
      const replay = await runCli(['--server', url, 'login', '--oidc', '--oidc-token-file', tokenFile], {
        configDir: ciDir(),
        env: FILE_STORAGE,
      });
      expect(replay.code).toBe(3);
      expect(replay.stderr).toMatch(/did not accept the OIDC token/);
      // without --org the hint names it (a token matching trusts of several organizations needs it)
      expect(replay.stderr).toMatch(/several organizations, pass --org <org_id>/);
      expect(replay.stdout).toBe('');

      // a trust with a 10-second TTL: its key works, and is refused once that has passed
      const short = await owner([
        'oidc',
        'trust',
        'add',
        '--issuer',
        issuer.url,
        '--claim',
        'repository=acme/short',
        '--ttl',
        '10s',
        '--json',
      ]);
      expect(short.code, short.stderr).toBe(0);
      const shortRun = await runCli(['--server', url, 'login', '--oidc', '--json'], {
        configDir: ciDir(),
        env: {
          ...FILE_STORAGE,
          BREEZE_OIDC_TOKEN: await issuer.sign({ aud: url, repository: 'acme/short' }),
        },
      });
      expect(shortRun.code, shortRun.stderr).toBe(0);
      const minted = JSON.parse(shortRun.stdout) as {
        api_key: string;
        key: { created_at: string; expires_at: string };
      };
      const lifetime = Date.parse(minted.key.expires_at) - Date.parse(minted.key.created_at);
      expect(lifetime).toBeGreaterThan(9_500);
      expect(lifetime).toBeLessThanOrEqual(10_000);
      expect(await status(minted.api_key)).toBe(200);
      await new Promise((r) =>
        setTimeout(r, Math.max(0, Date.parse(minted.key.expires_at) + 500 - Date.now())),
      );
      expect(await status(minted.api_key)).toBe(401);
    });

    it('GitLab: BREEZE_OIDC_TOKEN with --save stores the key in the profile like a login', async () => {
      const dir = ciDir();
      const token = await issuer.sign({ aud: url, repository: 'acme/api', ref: 'refs/heads/main' });
      const r = await runCli(['--server', url, 'login', '--oidc', '--save', '--json', '--verbose'], {
        configDir: dir,
        env: { ...FILE_STORAGE, BREEZE_OIDC_TOKEN: token, CI: 'true' },
      });
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as Record<string, unknown>;
      expect(out).toMatchObject({ profile: 'default', server: url, storage: 'file' });
      expect(out.prefix).toMatch(/^brz_/);
      expect(r.stdout).not.toMatch(/brz_[0-9A-Za-z]{46}/);
      // the HTTP trace shows the exchange, never the token or the key
      expect(r.stderr).toContain('POST');
      expect(r.stderr).not.toContain(token.split('.')[2]);
      expect(r.stderr).not.toMatch(/brz_[0-9A-Za-z]{46}/);
      const st = await runCli(['--server', url, 'status', '--json'], { configDir: dir, env: FILE_STORAGE });
      expect(st.code, st.stderr).toBe(0);
      expect(JSON.parse(st.stdout)).toMatchObject({ valid: true, key_id: out.key_id });
    });

    it('run --oidc: the command gets a short-lived key, nothing is stored, the key is gone afterwards', async () => {
      const dir = ciDir();
      const script =
        "fetch(process.env.BREEZE_SERVER + '/v1/me', { headers: { 'xi-api-key': process.env.BREEZE_API_KEY } })" +
        ".then((r) => { console.log(process.env.BREEZE_API_KEY_ID + ' ' + r.status); })";
      const r = await runCli(['--server', url, 'run', '--oidc', '--', process.execPath, '-e', script], {
        configDir: dir,
        env: actionsEnv(),
      });
      expect(r.code, r.stderr).toBe(0);
      const [keyId, code] = r.stdout.trim().split(' ');
      expect(code).toBe('200');
      expect(keyId).toMatch(/^key_/);
      expect(existsSync(join(dir, 'credentials.json'))).toBe(false);
      expect(existsSync(join(dir, 'config.json'))).toBe(false);
      // deleted on the server when the command ended
      expect(await status(ownerKey, `/v1/api-keys/${keyId}`)).toBe(404);
      // the child's exit code is passed on
      const failing = await runCli(
        ['--server', url, 'run', '--oidc', '--', process.execPath, '-e', 'process.exit(7)'],
        {
          configDir: ciDir(),
          env: actionsEnv(),
        },
      );
      expect(failing.code).toBe(7);
    });

    it('refusals: no token or no permission (2), a token the trust does not match (3), --org not an id (2)', async () => {
      const none = await runCli(['--server', url, 'login', '--oidc'], {
        configDir: ciDir(),
        env: FILE_STORAGE,
      });
      expect(none.code).toBe(2);
      expect(none.stderr).toMatch(/No CI OIDC token/);
      const noPermission = await runCli(['--server', url, 'login', '--oidc'], {
        configDir: ciDir(),
        env: { ...FILE_STORAGE, GITHUB_ACTIONS: 'true' },
      });
      expect(noPermission.code).toBe(2);
      expect(noPermission.stderr).toMatch(/id-token: write/);
      const wrongRepo = await runCli(['--server', url, 'login', '--oidc'], {
        configDir: ciDir(),
        env: {
          ...FILE_STORAGE,
          BREEZE_OIDC_TOKEN: await issuer.sign({ aud: url, repository: 'evil/api', ref: 'refs/heads/main' }),
        },
      });
      expect(wrongRepo.code).toBe(3);
      const wrongAud = await runCli(
        ['--server', url, 'login', '--oidc', '--audience', 'https://other.example.com'],
        {
          configDir: ciDir(),
          env: actionsEnv(),
        },
      );
      expect(wrongAud.code).toBe(3);
      expect(issuer.requestedAudiences.at(-1)).toBe('https://other.example.com');
      const badOrg = await runCli(['--server', url, 'login', '--oidc', '--org', 'acme'], {
        configDir: ciDir(),
        env: actionsEnv(),
      });
      expect(badOrg.code).toBe(2);
    });
  });
}
