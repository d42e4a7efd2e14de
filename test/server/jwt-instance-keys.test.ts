/**
 * PostgreSQL without BREEZE_PEPPER: each instance signs with keys of its own, encrypted under its
 * <data dir>/instance-secret (JwtService ownKeysOnly). Setting BREEZE_PEPPER later, as `breeze serve`
 * advises, must leave JWTs working: a peppered instance never takes another instance's key for its
 * current one (it could not decrypt it: every JWT and webhook failed until that key aged out).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig, type ServerConfig } from '../../src/server/config.js';
import { JwtService, OWN_KEY_MAX_AGE_MS } from '../../src/server/jwt.js';
import { openStore, type Store } from '../../src/server/store/index.js';
import { postgresAvailability, startPostgres, type TestPostgres, uniqueDbName } from '../helpers/postgres.js';
import { requirePart } from '../helpers/require.js';

const pgAvail = postgresAvailability();
const skip = requirePart('PostgreSQL', pgAvail.available, pgAvail.why);

describe.skipIf(skip)('JWT signing keys of instances without a pepper (PostgreSQL)', () => {
  let pg: TestPostgres;
  let store: Store;
  beforeAll(async () => {
    pg = await startPostgres();
    store = await openStore({ databaseUrl: await pg.createDatabase(uniqueDbName('jwtinst')) });
  }, 120_000);
  afterAll(async () => {
    await store?.close();
    await pg?.stop();
  });

  const service = (config: Partial<ServerConfig>, clock: () => Date = () => new Date()) =>
    new JwtService(
      { store, clock, config: defaultConfig({ publicUrl: 'http://b.test', ...config }) },
      { refreshMs: 0 },
    );

  it('instance keys are marked apart; an instance given BREEZE_PEPPER later signs with a key of its own', async () => {
    const noPepper = service({ pepper: null, instanceSecret: randomBytes(32) });
    await noPepper.init();
    const before = await noPepper.issue('usr_1');
    const rows = await store.db.selectFrom('signing_keys').selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]?.private_jwk).toMatch(/^enc:i1:/);

    const peppered = service({ pepper: Buffer.from('set-later'), instanceSecret: null });
    await peppered.init();
    const after = await peppered.issue('usr_1');
    expect(await peppered.verify(after.token)).toMatchObject({ sub: 'usr_1' });
    // the older instance's token stays valid (its key is published), and both accept the new one
    expect(await peppered.verify(before.token)).toMatchObject({ sub: 'usr_1' });
    expect(await noPepper.verify(after.token)).toMatchObject({ sub: 'usr_1' });
    const signed = await peppered.signDetached(Buffer.from('x'));
    expect((await peppered.jwks()).keys.map((k) => k.kid)).toContain(signed.kid);
    const stored = await store.db.selectFrom('signing_keys').selectAll().execute();
    for (const r of stored) expect(r.private_jwk).toMatch(/^enc:(v1|i1):/);
  });

  it('a service with neither a pepper nor an instance secret stores no key, not even when asked to rotate', async () => {
    const bare = service({ pepper: null, instanceSecret: null });
    const count = async () => (await store.db.selectFrom('signing_keys').selectAll().execute()).length;
    const n = await count();
    await expect(bare.rotateSigningKey()).rejects.toThrow(/disabled/);
    expect(await count()).toBe(n);
    expect((await bare.jwks()).keys).toEqual([]);
  });

  it("an instance's own key lives a day; a lost instance's key is retired once two days old", async () => {
    await store.db.deleteFrom('signing_keys').execute();
    let now = Date.parse('2026-12-01T00:00:00Z');
    const clock = () => new Date(now);
    const lost = service({ pepper: null, instanceSecret: randomBytes(32) }, clock);
    await lost.init();
    const lostKid = (await lost.signDetached(Buffer.from('x'))).kid;
    const alive = service({ pepper: null, instanceSecret: randomBytes(32) }, clock);
    await alive.init();
    const first = (await alive.signDetached(Buffer.from('x'))).kid;
    expect(first).not.toBe(lostKid);
    // a day and a bit later the running instance signs with a new key of its own; the lost
    // instance's key is still current (it may belong to an instance that is merely idle)
    now += OWN_KEY_MAX_AGE_MS + 60_000;
    const second = (await alive.signDetached(Buffer.from('x'))).kid;
    expect(second).not.toBe(first);
    const current = async () =>
      (await store.db.selectFrom('signing_keys').select('kid').where('retired_at', 'is', null).execute()).map(
        (r) => r.kid,
      );
    expect(await current()).toEqual(expect.arrayContaining([lostKid, second]));
    expect(await current()).not.toContain(first);
    // past two days, the next rotation retires the lost instance's key too
    now += OWN_KEY_MAX_AGE_MS + 60_000;
    const third = (await alive.signDetached(Buffer.from('x'))).kid;
    expect(await current()).toEqual([third]);
  });
});
