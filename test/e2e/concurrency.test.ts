import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempConfigDir } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let url: string;

beforeAll(async () => {
  server = await startTestServer();
  url = await server.app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(() => server.close());

/** Runs a writer script on `dir` until it says it is writing, then SIGKILLs it at a random moment. */
async function killMidWrite(script: string, dir: string): Promise<void> {
  const child = spawn(process.execPath, [script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((r) => child.stdout.once('data', () => r()));
  await new Promise((r) => setTimeout(r, 20 + Math.random() * 150));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
}

describe('concurrent breeze processes', () => {
  it('20 logins into 20 profiles at once leave every profile and every key intact', async () => {
    const t = tempConfigDir();
    const keys = await Promise.all(
      Array.from({ length: 20 }, (_, i) => server.seedKey({ email: `u${i}@example.com` })),
    );
    const results = await Promise.all(
      keys.map((k, i) =>
        runCli(['--server', url, '--profile', `p${i}`, 'login', '--with-key', '--storage', 'file'], {
          configDir: t.dir,
          input: k.apiKey,
          timeoutMs: 120_000,
        }),
      ),
    );
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const config = JSON.parse(readFileSync(join(t.dir, 'config.json'), 'utf8'));
    const creds = JSON.parse(readFileSync(join(t.dir, 'credentials.json'), 'utf8'));
    expect(Object.keys(config.profiles)).toHaveLength(20);
    keys.forEach((k, i) => {
      expect(config.profiles[`p${i}`]).toMatchObject({
        key_id: k.keyId,
        email: `u${i}@example.com`,
        storage: 'file',
        server: url,
      });
      expect(creds.credentials[`p${i}@${url}`]).toBe(k.apiKey);
    });
    // and each profile's key still reads back through the CLI
    const tok = await runCli(['--profile', 'p7', 'token'], { configDir: t.dir });
    expect(tok.stdout.trim()).toBe(keys[7]!.apiKey);
    t.cleanup();
  }, 180_000);

  it('a writer killed with SIGKILL mid-write leaves the old or the new file, never a broken one', async () => {
    const t = tempConfigDir();
    const script = join(t.dir, '..', 'writer.mjs');
    const dist = resolve(import.meta.dirname, '../../dist/cli/config.js');
    // Each generation rewrites ~200 KB of profiles that all carry the generation number.
    writeFileSync(
      script,
      `import { ConfigFile } from ${JSON.stringify(dist)};
const c = new ConfigFile(process.argv[2]);
for (let gen = 0; ; gen++) {
  await c.update((d) => {
    for (let i = 0; i < 400; i++) d.profiles['p' + i] = { server: 'http://x', key_id: 'key_' + gen, prefix: 'brz_' + 'x'.repeat(400), email: gen + '@x', storage: 'file' };
  });
  if (gen === 0) process.stdout.write('ready\\n');
}`,
    );
    for (let round = 0; round < 6; round++) {
      await killMidWrite(script, t.dir);
      expect(existsSync(join(t.dir, 'config.json'))).toBe(true);
      const data = JSON.parse(readFileSync(join(t.dir, 'config.json'), 'utf8'));
      const gens = new Set(
        Object.values(data.profiles as Record<string, { key_id: string }>).map((p) => p.key_id),
      );
      expect(Object.keys(data.profiles)).toHaveLength(400);
      expect(gens.size).toBe(1); // one consistent snapshot
      // the lock the killed writer held goes stale; the next round must still get it
    }
    t.cleanup();
  }, 300_000);

  it('a credentials.json writer killed with SIGKILL mid-write leaves a whole file (0600), never a broken one', async () => {
    const t = tempConfigDir();
    const script = join(t.dir, '..', 'cred-writer.mjs');
    const dist = resolve(import.meta.dirname, '../../dist/credentials/file-store.js');
    // 400 accounts of ~400-byte secrets (~180 KB), then one account rewritten per write, forever
    writeFileSync(
      script,
      `import { FileCredentialStore } from ${JSON.stringify(dist)};
const store = new FileCredentialStore(process.argv[2]);
for (let i = 0; i < 400; i++) await store.set('p' + i + '@http://x', 'brz_' + 'x'.repeat(400));
process.stdout.write('ready\\n');
for (let gen = 0; ; gen++) await store.set('p' + (gen % 400) + '@http://x', 'brz_' + String(gen).padEnd(400, 'y'));`,
    );
    for (let round = 0; round < 6; round++) {
      await killMidWrite(script, t.dir);
      const path = join(t.dir, 'credentials.json');
      expect(statSync(path).mode & 0o777).toBe(0o600);
      const data = JSON.parse(readFileSync(path, 'utf8')) as { credentials: Record<string, string> };
      expect(Object.keys(data.credentials)).toHaveLength(400);
      for (const v of Object.values(data.credentials)) expect(v).toMatch(/^brz_[0-9xy]{400}$/);
    }
    t.cleanup();
  }, 300_000);
});
