/**
 * README Quickstart: "breeze logout  # deletes the key on the server and the local copy". cli.test.ts
 * proves it for a profile stored in the file. For a profile stored in the OS keychain, when the
 * keychain does not answer (locked, hung: README "a hung keyring never hangs breeze"), logout can
 * read no key, so it deletes nothing on the server and nothing in the keychain; it must then not
 * report success (exit 0, "Logged out") and forget the profile that still names a live key.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli, tempConfigDir } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let url: string;
beforeAll(async () => {
  server = await startTestServer();
  url = await server.app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(() => server.close());

it('logout of a keychain profile while the keychain does not answer: the key is deleted, or the command fails', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'breeze-hung-logout-'));
  const sock = join(dir, 'bus');
  const held: Socket[] = [];
  const silent = createServer((s) => held.push(s)); // a D-Bus "daemon" that never answers
  await new Promise<void>((r) => silent.listen(sock, r));
  const t = tempConfigDir();
  try {
    const { apiKey, keyId, userId } = await server.seedKey({
      email: 'hung@example.com',
      createdVia: 'cli_login',
    });
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
            email: 'hung@example.com',
            user_id: userId,
            storage: 'keychain',
            expires_at: null,
          },
        },
      }),
    );
    chmodSync(join(t.dir, 'config.json'), 0o600);
    const r = await runCli(['logout'], {
      configDir: t.dir,
      env: { DBUS_SESSION_BUS_ADDRESS: `unix:path=${sock}`, BREEZE_KEYCHAIN_TIMEOUT_MS: '1000' },
      timeoutMs: 20_000,
    });
    const live = (await fetch(`${url}/v1/me`, { headers: { 'xi-api-key': apiKey } })).status === 200;
    if (live) {
      // nothing was deleted: that is not a successful logout
      expect(r.code, `exit 0 although the key is still live; stderr: ${r.stderr}`).not.toBe(0);
      expect(r.stderr).not.toMatch(/Logged out/);
      // and the profile that names the live key is not forgotten
      expect(JSON.parse(readFileSync(join(t.dir, 'config.json'), 'utf8')).profiles.default?.key_id).toBe(
        keyId,
      );
    }
  } finally {
    for (const s of held) s.destroy();
    silent.close();
    rmSync(dir, { recursive: true, force: true });
    t.cleanup();
  }
});
