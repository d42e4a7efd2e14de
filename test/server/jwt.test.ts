import { execFile } from 'node:child_process';
import { createHmac, createPrivateKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/server/config.js';
import { JwtService, RETIRED_KEY_RETENTION_MS } from '../../src/server/jwt.js';
import { openStore, type Store } from '../../src/server/store/index.js';
import { postgresAvailability, startPostgres, type TestPostgres, uniqueDbName } from '../helpers/postgres.js';
import { requirePart } from '../helpers/require.js';

const PUBLIC_URL = 'https://breeze.example.test';
const execFileAsync = promisify(execFile);
const pgAvail = postgresAvailability();
const skipPg = requirePart('PostgreSQL', pgAvail.available, pgAvail.why);

function movableClock() {
  let offset = 0;
  return {
    now: () => new Date(Date.now() + offset),
    advance: (ms: number) => {
      offset += ms;
    },
  };
}

function service(
  store: Store,
  o: { clock?: () => Date; pepper?: Buffer | null; refreshMs?: number; maxKeyAgeMs?: number } = {},
) {
  return new JwtService(
    {
      store,
      config: defaultConfig({
        publicUrl: PUBLIC_URL,
        pepper: o.pepper === undefined ? Buffer.from('pepper') : o.pepper,
      }),
      clock: o.clock ?? (() => new Date()),
    },
    { refreshMs: o.refreshMs ?? 0, maxKeyAgeMs: o.maxKeyAgeMs },
  );
}

const kidOf = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString()).kid as string;

/** A way to open several independent connections ("server instances") to one database. */
interface Engine {
  name: string;
  skip: boolean;
  fresh(): Promise<() => Promise<Store>>;
  cleanup(): Promise<void>;
}

const opened: Store[] = [];
const dirs: string[] = [];
let pgs: TestPostgres | undefined;

const engines: Engine[] = [
  {
    name: 'SQLite',
    skip: false,
    async fresh() {
      const dir = mkdtempSync(join(tmpdir(), 'breeze-jwt-'));
      dirs.push(dir);
      return async () => {
        const s = await openStore({ dataDir: dir });
        opened.push(s);
        return s;
      };
    },
    async cleanup() {},
  },
  {
    name: 'PostgreSQL',
    skip: skipPg,
    async fresh() {
      pgs ??= await startPostgres();
      const url = await pgs.createDatabase(uniqueDbName('jwt'));
      return async () => {
        const s = await openStore({ databaseUrl: url });
        opened.push(s);
        return s;
      };
    },
    async cleanup() {
      await pgs?.stop();
    },
  },
];

afterAll(async () => {
  for (const s of opened) await s.close().catch(() => {});
  for (const e of engines) await e.cleanup();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

for (const engine of engines) {
  describe.skipIf(engine.skip)(`signing keys shared through ${engine.name}`, () => {
    let connect: () => Promise<Store>;
    beforeAll(async () => {
      connect = await engine.fresh();
    });

    // better-sqlite3 is synchronous: several SQLite connections in one process would block each other
    // inside a transaction, so SQLite instances are separate processes (below)
    if (engine.name !== 'SQLite') {
      it('four instances starting at once create exactly one key, and all publish it', async () => {
        // (opened one after the other: concurrent migrations are the store's own tests' business)
        const stores: Store[] = [];
        for (let i = 0; i < 4; i++) stores.push(await connect());
        const services = stores.map((s) => service(s));
        await Promise.all(services.map((s) => s.init()));
        const rows = await stores[0]?.db.selectFrom('signing_keys').selectAll().execute();
        expect(rows).toHaveLength(1);
        const sets = await Promise.all(services.map((s) => s.jwks()));
        for (const set of sets) expect(set).toEqual(sets[0]);
        expect(sets[0]?.keys).toHaveLength(1);
      });

      it('concurrent rotations on several instances leave exactly one current key, used by all', async () => {
        const stores = [await connect(), await connect(), await connect()];
        const services = stores.map((s) => service(s));
        await Promise.all(services.map((s) => s.init()));
        const before = await stores[0]?.db.selectFrom('signing_keys').select('kid').execute();
        await Promise.all(services.flatMap((s) => [s.rotateSigningKey(), s.rotateSigningKey()]));
        const rows = await stores[0]?.db.selectFrom('signing_keys').selectAll().execute();
        expect(rows?.length).toBe((before?.length ?? 0) + 6);
        const current = rows?.filter((r) => r.retired_at === null) ?? [];
        expect(current).toHaveLength(1);
        const tokens = await Promise.all(services.map((s) => s.issue('usr_x')));
        for (const t of tokens) expect(kidOf(t.token)).toBe(current[0]?.kid);
        // and every instance accepts every other's tokens
        for (const s of services)
          for (const t of tokens) expect((await s.verify(t.token))?.sub).toBe('usr_x');
      });
    }

    it('an instance that has not seen a new key yet accepts tokens signed with it', async () => {
      const [a, b] = [await connect(), await connect()];
      const signer = service(a as Store);
      const lazy = service(b as Store, { refreshMs: 3600_000 });
      await lazy.init();
      await signer.rotateSigningKey();
      const { token } = await signer.issue('usr_y');
      expect((await lazy.verify(token))?.sub).toBe('usr_y');
    });
  });
}

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));
function builtServer(): { available: boolean; why: string } {
  const built = join(DIST, 'server/jwt.js');
  if (!existsSync(built)) return { available: false, why: 'dist/ is not built (npm run build)' };
  const stale = ['src/server/jwt.ts', 'src/server/store/signing-keys.ts'].some(
    (f) =>
      statSync(f).mtimeMs > statSync(join(DIST, f.replace(/^src\//, '').replace(/\.ts$/, '.js'))).mtimeMs,
  );
  return stale
    ? { available: false, why: 'dist/ is older than src/ (npm run build)' }
    : { available: true, why: '' };
}
const distState = builtServer();
const skipDist = requirePart('built server in dist/', distState.available, distState.why);

/** One server instance in its own process: waits for `go`, then init, rotations, one token. */
const CHILD = `
import { existsSync } from 'node:fs';
const [dist, dataDir, rotations, go, publicUrl] = process.argv.slice(1);
const { openStore } = await import(dist + 'server/store/index.js');
const { JwtService } = await import(dist + 'server/jwt.js');
const { defaultConfig } = await import(dist + 'server/config.js');
const store = await openStore({ dataDir });
const config = defaultConfig({ publicUrl, pepper: Buffer.from('pepper') });
const jwt = new JwtService({ store, config, clock: () => new Date() }, { refreshMs: 0 });
while (!existsSync(go)) await new Promise((r) => setTimeout(r, 2));
await jwt.init();
for (let i = 0; i < Number(rotations); i++) await jwt.rotateSigningKey();
const { token } = await jwt.issue('usr_child');
process.stdout.write(JSON.stringify({ token }));
await store.close();
`;

async function runInstances(dataDir: string, count: number, rotations: number): Promise<string[]> {
  const go = join(dataDir, 'go');
  const children = Array.from({ length: count }, () =>
    execFileAsync(process.execPath, [
      '--input-type=module',
      '-e',
      CHILD,
      DIST,
      dataDir,
      String(rotations),
      go,
      PUBLIC_URL,
    ]),
  );
  await new Promise((r) => setTimeout(r, 400));
  writeFileSync(go, '');
  const outs = await Promise.all(children);
  rmSync(go);
  return outs.map((o) => (JSON.parse(o.stdout) as { token: string }).token);
}

describe.skipIf(skipDist)('signing keys shared through one SQLite file by several processes', () => {
  it('processes starting at once create one key; concurrent rotations leave one current key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'breeze-jwt-'));
    dirs.push(dir);
    const store = await openStore({ dataDir: dir }); // migrated once, before the race
    opened.push(store);
    const first = await runInstances(dir, 4, 0);
    const rows = await store.db.selectFrom('signing_keys').selectAll().execute();
    expect(rows).toHaveLength(1);
    for (const t of first) expect(kidOf(t)).toBe(rows[0]?.kid);

    const tokens = await runInstances(dir, 4, 3);
    const after = await store.db.selectFrom('signing_keys').selectAll().execute();
    expect(after).toHaveLength(1 + 4 * 3);
    expect(after.filter((r) => r.retired_at === null)).toHaveLength(1);
    const jwt = service(store);
    for (const t of [...first, ...tokens]) expect((await jwt.verify(t))?.sub).toBe('usr_child');
    expect((await jwt.jwks()).keys).toHaveLength(13);
  });
});

describe('rotation keeps tokens valid for their lifetime', () => {
  it('old tokens verify after a rotation; the retired key stays published for at least a token lifetime', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'breeze-jwt-'));
    dirs.push(dir);
    const store = await openStore({ dataDir: dir });
    opened.push(store);
    const clock = movableClock();
    const jwt = service(store, { clock: clock.now });
    await jwt.init();
    const old = await jwt.issue('usr_old');
    const oldKid = kidOf(old.token);
    const { kid: newKid } = await jwt.rotateSigningKey();
    expect(newKid).not.toBe(oldKid);
    const fresh = await jwt.issue('usr_new');
    expect(kidOf(fresh.token)).toBe(newKid);
    expect((await jwt.verify(old.token))?.sub).toBe('usr_old');
    expect((await jwt.jwks()).keys.map((k) => k.kid)).toEqual([newKid, oldKid]);

    // one second before the old token expires: still valid, its key still published
    clock.advance(3600_000 - 1000);
    expect((await jwt.verify(old.token))?.sub).toBe('usr_old');
    expect((await jwt.jwks()).keys.map((k) => k.kid)).toContain(oldKid);

    // after the retention the retired key is gone; the current one stays
    clock.advance(RETIRED_KEY_RETENTION_MS - 3600_000 + 2000);
    expect((await jwt.jwks()).keys.map((k) => k.kid)).toEqual([newKid]);
    expect(await jwt.verify(old.token)).toBeNull();
  });

  it('rotates on its own once the current key is older than maxKeyAgeMs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'breeze-jwt-'));
    dirs.push(dir);
    const store = await openStore({ dataDir: dir });
    opened.push(store);
    const clock = movableClock();
    const jwt = service(store, { clock: clock.now, maxKeyAgeMs: 86_400_000 });
    await jwt.init();
    const first = kidOf((await jwt.issue('u')).token);
    clock.advance(86_400_000 - 60_000);
    expect(kidOf((await jwt.issue('u')).token)).toBe(first);
    clock.advance(120_000);
    const second = kidOf((await jwt.issue('u')).token);
    expect(second).not.toBe(first);
    expect((await jwt.jwks()).keys.map((k) => k.kid)).toEqual([second, first]);
  });
});

describe('private keys at rest', () => {
  it('are encrypted with a key derived from the pepper; another pepper can verify but not sign', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'breeze-jwt-'));
    dirs.push(dir);
    const store = await openStore({ dataDir: dir });
    opened.push(store);
    const jwt = service(store, { pepper: Buffer.from('pepper-one') });
    await jwt.init();
    const row = await store.db.selectFrom('signing_keys').selectAll().executeTakeFirstOrThrow();
    expect(row.private_jwk.startsWith('enc:v1:')).toBe(true);
    expect(row.private_jwk).not.toContain('"d"');
    const { token } = await jwt.issue('usr_z');

    const other = service(store, { pepper: Buffer.from('pepper-two') });
    expect((await other.verify(token))?.sub).toBe('usr_z');
    await expect(other.issue('usr_z')).rejects.toThrow(/pepper/);
  });
});

describe('verification refuses forged, foreign and malformed tokens', () => {
  let jwt: JwtService;
  let x: string;
  let kid: string;
  /** the server's own private key (stored in clear here: this service has no pepper) */
  let ownKey: KeyObject;
  const now = () => Math.floor(Date.now() / 1000);
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'breeze-jwt-'));
    dirs.push(dir);
    const store = await openStore({ dataDir: dir });
    opened.push(store);
    jwt = service(store, { pepper: null });
    await jwt.init();
    const key = (await jwt.jwks()).keys[0];
    x = key?.x as string;
    kid = key?.kid as string;
    const row = await store.db.selectFrom('signing_keys').selectAll().executeTakeFirstOrThrow();
    ownKey = createPrivateKey({ key: JSON.parse(row.private_jwk), format: 'jwk' });
  });

  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const claims = () => {
    const t = now();
    return { iss: PUBLIC_URL, aud: 'breeze', sub: 'usr_evil', iat: t, exp: t + 3600 };
  };
  /** signs `payload` with the server's own key: only the claims can make it invalid */
  const signOwn = (payload: Record<string, unknown>, header: Record<string, unknown> = {}) => {
    const input = `${b64({ alg: 'Ed25519', kid, typ: 'JWT', ...header })}.${b64(payload)}`;
    return `${input}.${sign(null, Buffer.from(input), ownKey).toString('base64url')}`;
  };

  it('accepts a token it signed itself with the right claims (the control)', async () => {
    expect((await jwt.verify(signOwn(claims())))?.sub).toBe('usr_evil');
  });

  it('alg none', async () => {
    expect(await jwt.verify(`${b64({ alg: 'none', kid })}.${b64(claims())}.`)).toBeNull();
  });

  it('HS256 keyed with the public key', async () => {
    const input = `${b64({ alg: 'HS256', kid, typ: 'JWT' })}.${b64(claims())}`;
    const sig = createHmac('sha256', x).update(input).digest('base64url');
    expect(await jwt.verify(`${input}.${sig}`)).toBeNull();
  });

  it('correctly signed but with a wrong audience, issuer, expiry, lifetime, subject or kid', async () => {
    const c = claims();
    for (const payload of [
      { ...c, aud: 'someone-else' },
      { ...c, iss: 'https://evil.example' },
      { ...c, iat: now() - 7200, exp: now() - 3600 },
      { ...c, exp: now() + 86_400 }, // longer than the 1-hour lifetime
      { iss: c.iss, aud: c.aud, iat: c.iat, exp: c.exp }, // no sub
    ]) {
      expect(await jwt.verify(signOwn(payload)), JSON.stringify(payload)).toBeNull();
    }
    expect(await jwt.verify(signOwn(c, { kid: 'unknown-kid' }))).toBeNull();
    expect(await jwt.verify(signOwn(c, { alg: 'EdDSA' }))).toBeNull();
  });

  it('a byte changed in the payload', async () => {
    const good = await jwt.issue('usr_ok');
    const [h, , sig] = good.token.split('.');
    expect(await jwt.verify(`${h}.${b64({ ...claims(), sub: 'usr_other' })}.${sig}`)).toBeNull();
  });

  it('tokens from another Breeze server, or signed by a stranger claiming our kid', async () => {
    const otherDir = mkdtempSync(join(tmpdir(), 'breeze-jwt-'));
    dirs.push(otherDir);
    const otherStore = await openStore({ dataDir: otherDir });
    opened.push(otherStore);
    const foreign = await service(otherStore).issue('usr_ok');
    expect(await jwt.verify(foreign.token)).toBeNull();
    const { privateKey } = generateKeyPairSync('ed25519');
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: 'Ed25519', kid })
      .setIssuer(PUBLIC_URL)
      .setAudience('breeze')
      .setSubject('usr_evil')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(privateKey);
    expect(await jwt.verify(forged)).toBeNull();
    expect(await jwt.verify('not.a.jwt')).toBeNull();
  });
});
