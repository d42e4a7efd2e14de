/**
 * The fast entry of `breeze token`, `breeze env` and `breeze --version` (bin/breeze.js -> the
 * CommonJS bundle dist/cli/bin.cjs): what it must not load, and how it leaves through a closed pipe.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../src/core/api-key.js';
import { BIN, cliEnv, runCli, tempConfigDir } from '../helpers/cli.js';

const PRELOAD = resolve(import.meta.dirname, '../fixtures/module-list.cjs');
let tmp: ReturnType<typeof tempConfigDir>;
const key = generateApiKey();

beforeAll(() => {
  tmp = tempConfigDir();
  mkdirSync(tmp.dir, { recursive: true, mode: 0o700 });
  const profile = {
    server: 'embedded',
    key_id: 'key_fast',
    prefix: key.slice(0, 12),
    email: 'a@example.com',
  };
  writeFileSync(
    join(tmp.dir, 'config.json'),
    JSON.stringify({ version: 1, profiles: { default: { ...profile, storage: 'file' } } }),
    { mode: 0o600 },
  );
  writeFileSync(
    join(tmp.dir, 'credentials.json'),
    JSON.stringify({ version: 1, credentials: { 'default@embedded': key } }),
    { mode: 0o600 },
  );
});

afterAll(() => tmp?.cleanup());

describe('fast entry', () => {
  it('token and env print the stored key without loading crypto, zlib, child_process, os or the ESM loader', async () => {
    const token = await runCli(['token'], { configDir: tmp.dir });
    expect(token.code, token.stderr).toBe(0);
    expect(token.stdout).toBe(`${key}\n`);
    const env = await runCli(['env'], { configDir: tmp.dir });
    expect(env.stdout).toBe(`export BREEZE_API_KEY='${key}'\nexport BREEZE_API_KEY_ID='key_fast'\n`);

    for (const args of [['token'], ['env'], ['env', '--format', 'fish'], ['--version']]) {
      const list = join(tmp.dir, '..', 'modules.txt');
      const r = spawnSync(process.execPath, ['-r', PRELOAD, BIN, ...args], {
        env: cliEnv(tmp.dir, { BREEZE_TEST_MODULE_LIST: list }),
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      const loaded = readFileSync(list, 'utf8').split('\n');
      const heavy = loaded.filter((m) =>
        /^NativeModule (crypto|zlib|child_process|os|internal\/modules\/esm\/translators)$/.test(m),
      );
      expect(heavy, `breeze ${args.join(' ')}`).toEqual([]);
    }
  });

  it('token, env and --version print no EPIPE error when the reader has gone (breeze token | head -c 0)', () => {
    for (let i = 0; i < 5; i++) {
      for (const cmd of ['token', 'env', 'env --format json', '--version']) {
        const r = spawnSync(
          'bash',
          ['-c', `"${process.execPath}" "${BIN}" ${cmd} | head -c 0; exit "\${PIPESTATUS[0]}"`],
          { env: cliEnv(tmp.dir), encoding: 'utf8' },
        );
        expect(r.stderr, `breeze ${cmd}`).toBe('');
        expect(r.status, `breeze ${cmd}`).toBe(0);
      }
    }
  });

  it('anything else goes to the full program: unknown flags are usage errors, errors keep their exit codes', async () => {
    const bad = await runCli(['token', '--bogus'], { configDir: tmp.dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown option/i);
    const none = await runCli(['token', '--profile', 'other'], { configDir: tmp.dir });
    expect(none.code).toBe(3);
    expect(none.stderr).toMatch(/^Error: Not logged in \(profile "other", the embedded server\)\.\n/);
    expect(none.stdout).toBe('');
  });
});
