/**
 * README "Quickstart": "A profile holds one key. Logging in again replaces it: the replaced key is
 * deleted on the server when a login made it (no copy of it is left anywhere), and kept when it was
 * pasted or made with `breeze keys create` ... (the CLI says which)."
 *
 * The replaced key is made by a real login (the email code flow against `breeze serve`, code read
 * from its dev outbox), so nobody saw it and the profile's copy is its only one: after any re-login
 * (another user, another server, narrower scopes, the old key disabled) it must be gone from its
 * server, and the CLI must say so. A key that came in by --with-key is kept, even one a login made
 * elsewhere (another profile or machine still holds it).
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestOutboxCode } from '../helpers/browser.js';
import {
  runCli,
  seedKeyInDataDir,
  spawnCli,
  stopServe,
  tempConfigDir,
  waitForOutput,
} from '../helpers/cli.js';

const NO_DBUS = { DBUS_SESSION_BUS_ADDRESS: undefined, BREEZE_STORAGE: 'file' };

interface Served {
  proc: ChildProcess;
  url: string;
  dataDir: string;
}
const tmp = tempConfigDir();
let a: Served;
let b: Served;

async function serve(name: string): Promise<Served> {
  const dataDir = join(tmp.dir, '..', name);
  const proc = spawnCli(['serve', '--port', '0', '--data-dir', dataDir, '--rate-limit-per-key', '0'], {
    configDir: join(tmp.dir, '..', `${name}-config`),
  });
  proc.stdout?.resume();
  const m = await waitForOutput(proc, /listening on (http:\/\/127\.0\.0\.1:\d+)/);
  return { proc, url: m[1]!, dataDir };
}

beforeAll(async () => {
  a = await serve('server-a');
  b = await serve('server-b');
});
afterAll(async () => {
  await stopServe(a.proc);
  await stopServe(b.proc);
  tmp.cleanup();
});

async function meStatus(url: string, apiKey: string): Promise<number> {
  return (await fetch(`${url}/v1/me`, { headers: { 'xi-api-key': apiKey } })).status;
}

function login(dir: string, url: string, apiKey: string) {
  return runCli(['--server', url, 'login', '--with-key'], {
    configDir: dir,
    input: `${apiKey}\n`,
    env: NO_DBUS,
  });
}

/** `breeze login --email` with the code from the server's outbox: a key a login made (minted). */
async function emailLogin(dir: string, s: Served, email: string): Promise<{ apiKey: string; keyId: string }> {
  const outbox = join(s.dataDir, 'outbox');
  const before = latestOutboxCode(outbox, email);
  const ask = await runCli(['--server', s.url, 'login', '--email', email], { configDir: dir, env: NO_DBUS });
  expect(ask.code, ask.stderr).toBe(2);
  let code: string | undefined;
  for (let i = 0; i < 200 && (!code || code === before); i++) {
    code = latestOutboxCode(outbox, email);
    if (!code || code === before) await new Promise((r) => setTimeout(r, 25));
  }
  const done = await runCli(['--server', s.url, '--json', 'login', '--email', email, '--code', code ?? ''], {
    configDir: dir,
    env: NO_DBUS,
  });
  expect(done.code, done.stderr).toBe(0);
  const keyId = (JSON.parse(done.stdout) as { key_id: string }).key_id;
  const creds = JSON.parse(readFileSync(join(dir, 'credentials.json'), 'utf8')) as {
    credentials: Record<string, string>;
  };
  return { apiKey: creds.credentials[`default@${s.url}`] ?? '', keyId };
}

describe('re-login replaces a login-made key: it is deleted on its server, whatever the new login', () => {
  it('logging in again as another user deletes the previous user’s login key, and says so', async () => {
    const t = tempConfigDir();
    try {
      const first = await emailLogin(t.dir, a, 'first@example.com');
      expect(await meStatus(a.url, first.apiKey)).toBe(200);
      const second = await seedKeyInDataDir(a.dataDir, { email: 'second@example.com' });
      const r = await login(t.dir, a.url, second.apiKey);
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(join(t.dir, 'credentials.json'), 'utf8')).not.toContain(first.apiKey);
      expect(r.stderr).toContain(`Deleted this profile's previous key ${first.keyId}`);
      expect(await meStatus(a.url, first.apiKey), 'the replaced login key still works').toBe(401);
    } finally {
      t.cleanup();
    }
  });

  it('logging in again with narrower scopes deletes the previous (wider) login key', async () => {
    const t = tempConfigDir();
    try {
      const first = await emailLogin(t.dir, a, 'narrow@example.com');
      // `breeze login --scopes read` makes a key like this one
      const second = await seedKeyInDataDir(a.dataDir, { email: 'narrow@example.com', scopes: ['read'] });
      const r = await login(t.dir, a.url, second.apiKey);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`Deleted this profile's previous key ${first.keyId}`);
      expect(
        await meStatus(a.url, first.apiKey),
        `the replaced login key still works; CLI said: ${r.stderr}`,
      ).toBe(401);
    } finally {
      t.cleanup();
    }
  });

  it('logging in again to another server deletes the previous server’s login key', async () => {
    const t = tempConfigDir();
    try {
      const first = await emailLogin(t.dir, a, 'moved@example.com');
      const second = await seedKeyInDataDir(b.dataDir, { email: 'moved@example.com' });
      const r = await login(t.dir, b.url, second.apiKey);
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(join(t.dir, 'credentials.json'), 'utf8')).not.toContain(first.apiKey);
      expect(r.stderr).toContain(`Deleted this profile's previous key ${first.keyId}`);
      expect(await meStatus(a.url, first.apiKey), 'the replaced login key still works on its server').toBe(
        401,
      );
    } finally {
      t.cleanup();
    }
  });

  it('a disabled login key (a leak report disables it) is deleted too: it refuses itself, the new key deletes it', async () => {
    const t = tempConfigDir();
    try {
      const first = await emailLogin(t.dir, a, 'leaked@example.com');
      const second = await seedKeyInDataDir(a.dataDir, { email: 'leaked@example.com' });
      const disable = await fetch(`${a.url}/v1/api-keys/${first.keyId}/disable`, {
        method: 'POST',
        headers: { 'xi-api-key': second.apiKey },
      });
      expect(disable.status).toBe(200);
      const r = await login(t.dir, a.url, second.apiKey);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`Deleted this profile's previous key ${first.keyId}`);
      // gone, not merely disabled: nobody can enable it again
      const gone = await fetch(`${a.url}/v1/api-keys/${first.keyId}`, {
        headers: { 'xi-api-key': second.apiKey },
      });
      expect(gone.status).toBe(404);
    } finally {
      t.cleanup();
    }
  });

  it('a disabled login key that neither key may delete (the new login is another user) is named in a warning', async () => {
    const t = tempConfigDir();
    try {
      const first = await emailLogin(t.dir, a, 'stuck@example.com');
      const admin = await seedKeyInDataDir(a.dataDir, { email: 'stuck@example.com' });
      const disable = await fetch(`${a.url}/v1/api-keys/${first.keyId}/disable`, {
        method: 'POST',
        headers: { 'xi-api-key': admin.apiKey },
      });
      expect(disable.status).toBe(200);
      const other = await seedKeyInDataDir(a.dataDir, { email: 'someone-else@example.com' });
      const r = await login(t.dir, a.url, other.apiKey);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`previous key ${first.keyId}`);
      expect(r.stderr).toContain('could not be deleted');
    } finally {
      t.cleanup();
    }
  });

  it('a key that came in by --with-key is kept, even one a login made (another profile or machine holds it)', async () => {
    const t = tempConfigDir();
    try {
      const first = await seedKeyInDataDir(a.dataDir, {
        email: 'pasted@example.com',
        createdVia: 'cli_login',
      });
      expect((await login(t.dir, a.url, first.apiKey)).code).toBe(0);
      const second = await seedKeyInDataDir(a.dataDir, { email: 'pasted@example.com' });
      const r = await login(t.dir, a.url, second.apiKey);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`previous key ${first.keyId} was not made by a login for it`);
      expect(await meStatus(a.url, first.apiKey)).toBe(200);
    } finally {
      t.cleanup();
    }
  });
});
