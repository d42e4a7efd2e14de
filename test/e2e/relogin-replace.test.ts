/**
 * README "Quickstart": "A profile holds one key. Logging in again replaces it: the replaced key is
 * deleted on the server when a login made it (no copy of it is left anywhere), and kept when it was
 * pasted or made with `breeze keys create` ... (the CLI says which)."
 *
 * cli.test.ts proves it for one case only: the same user, on the same server, with a new key at
 * least as wide as the old one. These are the other re-logins of one profile. In each, the
 * replaced key was made by a login (created_via cli_login) and the profile's only copy of it is
 * gone afterwards, so by the README it must be dead on its server, and the CLI must say so.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

describe('re-login replaces a login-made key: it is deleted on its server, whatever the new login', () => {
  it('logging in again as another user deletes the previous user’s login key (or at least says it was kept)', async () => {
    const t = tempConfigDir();
    try {
      const first = await seedKeyInDataDir(a.dataDir, {
        email: 'first@example.com',
        createdVia: 'cli_login',
      });
      expect((await login(t.dir, a.url, first.apiKey)).code).toBe(0);
      const second = await seedKeyInDataDir(a.dataDir, {
        email: 'second@example.com',
        createdVia: 'cli_login',
      });
      const r = await login(t.dir, a.url, second.apiKey);
      expect(r.code, r.stderr).toBe(0);
      // the profile no longer holds the first key anywhere
      expect(readFileSync(join(t.dir, 'credentials.json'), 'utf8')).not.toContain(first.apiKey);
      // README: deleted on the server, and the CLI says which
      expect(r.stderr, 'the CLI says nothing about the replaced key').toMatch(new RegExp(first.keyId));
      expect(await meStatus(a.url, first.apiKey), 'the replaced login key still works').toBe(401);
    } finally {
      t.cleanup();
    }
  });

  it('logging in again with narrower scopes deletes the previous (wider) login key', async () => {
    const t = tempConfigDir();
    try {
      const first = await seedKeyInDataDir(a.dataDir, {
        email: 'narrow@example.com',
        createdVia: 'cli_login',
        scopes: ['read', 'write', 'admin'],
      });
      expect((await login(t.dir, a.url, first.apiKey)).code).toBe(0);
      // `breeze login --scopes read` makes a key like this one
      const second = await seedKeyInDataDir(a.dataDir, {
        email: 'narrow@example.com',
        createdVia: 'cli_login',
        scopes: ['read'],
      });
      const r = await login(t.dir, a.url, second.apiKey);
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(join(t.dir, 'credentials.json'), 'utf8')).not.toContain(first.apiKey);
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
      const first = await seedKeyInDataDir(a.dataDir, {
        email: 'moved@example.com',
        createdVia: 'cli_login',
      });
      expect((await login(t.dir, a.url, first.apiKey)).code).toBe(0);
      const second = await seedKeyInDataDir(b.dataDir, {
        email: 'moved@example.com',
        createdVia: 'cli_login',
      });
      const r = await login(t.dir, b.url, second.apiKey);
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(join(t.dir, 'credentials.json'), 'utf8')).not.toContain(first.apiKey);
      expect(r.stderr, 'the CLI says nothing about the replaced key').toMatch(new RegExp(first.keyId));
      expect(await meStatus(a.url, first.apiKey), 'the replaced login key still works on its server').toBe(
        401,
      );
    } finally {
      t.cleanup();
    }
  });
});
