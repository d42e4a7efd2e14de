/**
 * PostgreSQL without BREEZE_PEPPER: each instance signs with keys of its own, encrypted under its
 * <data dir>/instance-secret (JwtService ownKeysOnly). Setting BREEZE_PEPPER later, as `breeze serve`
 * advises, must leave JWTs working: a peppered instance never takes another instance's key for its
 * current one (it could not decrypt it: every JWT and webhook failed until that key aged out).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig, type ServerConfig } from '../../src/server/config.js';
import { JwtService } from '../../src/server/jwt.js';
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

  const service = (config: Partial<ServerConfig>) =>
    new JwtService({
      store,
      clock: () => new Date(),
      config: defaultConfig({ publicUrl: 'http://b.test', ...config }),
    });

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
});
