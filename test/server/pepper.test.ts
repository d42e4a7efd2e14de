/**
 * README, security model: "The server stores only a hash: HMAC-SHA-256 with a pepper kept outside the
 * database (`BREEZE_PEPPER`, or `<data dir>/pepper`, mode 0600)." Proved through startServer, the
 * path `breeze serve` and the embedded server take, over a real SQLite data dir.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createSecretHasher, sha256 } from '../../src/core/hash.js';
import { resolveInstanceSecret, resolvePepper } from '../../src/server/config.js';
import { startServer } from '../../src/server/serve.js';
import { mintSeedKey } from '../helpers/server.js';

let dataDir: string;
const savedPepper = process.env.BREEZE_PEPPER;

beforeEach(() => {
  delete process.env.BREEZE_PEPPER;
  dataDir = mkdtempSync(join(tmpdir(), 'breeze-pepper-'));
});
afterEach(() => {
  if (savedPepper === undefined) delete process.env.BREEZE_PEPPER;
  else process.env.BREEZE_PEPPER = savedPepper;
  rmSync(dataDir, { recursive: true, force: true });
});

it('a fresh SQLite data dir gets <data dir>/pepper (0600); keys are stored as HMAC-SHA-256 under it, the pepper is not in the database', async () => {
  let s = await startServer({ host: '127.0.0.1', port: 0, dataDir, logger: false });
  let apiKey: string;
  try {
    const file = join(dataDir, 'pepper');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const pepper = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64url');
    expect(pepper.length).toBeGreaterThanOrEqual(32);

    ({ apiKey } = await mintSeedKey(s.store, s.app.breeze.keys));
    // the stored hash is the peppered HMAC, not a plain SHA-256 of the key
    expect(await s.store.keys.findByHash(createSecretHasher(pepper)(apiKey))).toBeDefined();
    expect(await s.store.keys.findByHash(sha256(apiKey))).toBeUndefined();
  } finally {
    await s.close();
  }

  // the pepper lives outside the database: none of its encodings is in the database files
  const pepper = Buffer.from(readFileSync(join(dataDir, 'pepper'), 'utf8').trim(), 'base64url');
  const dbFiles = readdirSync(dataDir).filter((f) => f.startsWith('breeze.db'));
  expect(dbFiles.length).toBeGreaterThan(0);
  for (const f of dbFiles) {
    const bytes = readFileSync(join(dataDir, f));
    for (const needle of [
      pepper,
      Buffer.from(pepper.toString('base64url')),
      Buffer.from(pepper.toString('hex')),
    ]) {
      expect(bytes.includes(needle), f).toBe(false);
    }
  }

  // a restart reuses the same pepper: the key still authenticates
  s = await startServer({ host: '127.0.0.1', port: 0, dataDir, logger: false });
  try {
    const me = await s.app.inject({ method: 'GET', url: '/v1/me', headers: { 'xi-api-key': apiKey } });
    expect(me.statusCode).toBe(200);
  } finally {
    await s.close();
  }
});

it('BREEZE_PEPPER wins over the file and writes none', () => {
  expect(resolvePepper(dataDir, { BREEZE_PEPPER: 'from-the-env' })).toEqual(Buffer.from('from-the-env'));
  expect(readdirSync(dataDir)).not.toContain('pepper');
  // a shared database (no data dir) never invents a local pepper
  expect(resolvePepper(undefined, {})).toBeNull();
});

it('an empty secret file is an error naming it, never "no secret"; a fresh one is written whole (no temporary file left)', () => {
  // a racer on a fresh data dir used to read the winner's file before its bytes were written: an
  // empty pepper (another hash than the winner's) or an empty instance secret (JWTs off)
  writeFileSync(join(dataDir, 'pepper'), '');
  expect(() => resolvePepper(dataDir, {})).toThrow(/pepper is empty/);
  writeFileSync(join(dataDir, 'instance-secret'), '\n');
  expect(() => resolveInstanceSecret(dataDir)).toThrow(/instance-secret is empty/);

  const fresh = mkdtempSync(join(tmpdir(), 'breeze-secret-'));
  try {
    const secret = resolveInstanceSecret(join(fresh, 'data'));
    expect(secret.length).toBe(32);
    expect(readdirSync(join(fresh, 'data'))).toEqual(['instance-secret']);
    expect(statSync(join(fresh, 'data', 'instance-secret')).mode & 0o777).toBe(0o600);
    expect(resolveInstanceSecret(join(fresh, 'data'))).toEqual(secret);
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
});
