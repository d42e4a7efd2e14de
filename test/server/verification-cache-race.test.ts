import { afterEach, describe, expect, test } from 'vitest';
import type { KeyWithUser } from '../../src/server/store/keys.js';
import { VerificationCache } from '../../src/server/verification-cache.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * A lookup that read a key before its revocation committed must not put that older answer into
 * the cache after the revocation dropped it: with a long cache TTL the revoked key would then pass
 * on this instance until the entry expired.
 */

const row = (id: string) => ({ key: { id } }) as unknown as KeyWithUser;

describe('VerificationCache', () => {
  test('a read that started before its key was dropped is not cached; other keys and later reads are', () => {
    const c = new VerificationCache(60_000);
    const before = c.generation;
    c.invalidateKey('key_a');
    c.set('ha', row('key_a'), 0, before);
    expect(c.get('ha', 1)).toBeUndefined();
    c.set('hb', row('key_b'), 0, before);
    expect(c.get('hb', 1)?.key.id).toBe('key_b');
    c.set('ha', row('key_a'), 0, c.generation);
    expect(c.get('ha', 1)?.key.id).toBe('key_a');
  });

  test('when the drop it missed is forgotten (many revocations since), an old read is not cached', () => {
    const c = new VerificationCache(60_000);
    const before = c.generation;
    c.invalidateKey('key_a');
    for (let i = 0; i < 10_001; i++) c.invalidateKey(`other_${i}`);
    c.set('ha', row('key_a'), 0, before);
    expect(c.get('ha', 1)).toBeUndefined();
    c.set('ha', row('key_a'), 0, c.generation);
    expect(c.get('ha', 1)?.key.id).toBe('key_a');
  });
});

let s: TestServer | undefined;
afterEach(async () => {
  await s?.close();
  s = undefined;
});

for (const route of ['/v1/me', '/v1/keys/verify'] as const) {
  test(`${route}: a key disabled while its lookup is in flight is refused right after, not served from the cache`, async () => {
    s = await startTestServer({ config: { keyCacheTtlMs: 60_000 } });
    const server = s;
    const owner = await server.seedKey({
      email: 'o@example.com',
      scopes: ['read', 'write', 'admin', 'verify'],
    });
    const k = await server.seedKey({ email: 'o@example.com', scopes: ['read'] });
    // the owner's key is cached first, so only k's lookup is held
    expect(
      (await server.app.inject({ method: 'GET', url: '/v1/me', headers: { 'xi-api-key': owner.apiKey } }))
        .statusCode,
    ).toBe(200);
    const repo = server.store.keys;
    const findByHash = repo.findByHash.bind(repo);
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let reading!: () => void;
    const started = new Promise<void>((r) => {
      reading = r;
    });
    repo.findByHash = async (hash: string) => {
      const found = await findByHash(hash);
      reading();
      await held;
      return found;
    };
    const ask = () =>
      route === '/v1/me'
        ? server.app.inject({ method: 'GET', url: '/v1/me', headers: { 'xi-api-key': k.apiKey } })
        : server.app.inject({
            method: 'POST',
            url: '/v1/keys/verify',
            headers: { 'xi-api-key': owner.apiKey },
            payload: { key: k.apiKey },
          });
    const inFlight = ask();
    await started;
    repo.findByHash = findByHash;
    const off = await server.app.inject({
      method: 'POST',
      url: `/v1/api-keys/${k.keyId}/disable`,
      headers: { 'xi-api-key': owner.apiKey },
    });
    expect(off.statusCode).toBe(200);
    release();
    // the held request read the key before it was disabled: either answer is fair for it
    await inFlight;
    const after = await ask();
    if (route === '/v1/me') expect(after.statusCode).toBe(401);
    else expect(after.json().code).toBe('DISABLED');
  });
}
