/**
 * README "Accept Breeze keys in your API": "Email-code JWTs pass only for members of the verify
 * key's organization (... the member list is reread every 5 s)", and packages/verify/README.md: "a
 * removed member's token stops passing within seconds". jwt-webhook.test.ts only shows a member list
 * read once; nothing changes the list afterwards. This does: removal and demotion.
 */
import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createVerifier, type Verifier } from '../src/verifier.js';
import { type FakeBreeze, startFakeBreeze } from './fake-breeze.js';

let fake: FakeBreeze;
let v: Verifier | undefined;
beforeEach(async () => {
  fake = await startFakeBreeze();
});
afterEach(async () => {
  await v?.close();
  await fake.close();
});

it("a removed member's JWT stops passing, and a demoted one narrows, within the 5 s reread (plus slack)", async () => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const { x } = publicKey.export({ format: 'jwk' }) as { x: string };
  fake.jwks = { keys: [{ kty: 'OKP', crv: 'Ed25519', x, kid: 'k1', alg: 'Ed25519', use: 'sig' }] };
  const now = Math.floor(Date.now() / 1000);
  const jwt = (sub: string) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'Ed25519', kid: 'k1', typ: 'JWT' })
      .setIssuer(fake.url)
      .setAudience('breeze')
      .setSubject(sub)
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(privateKey);
  fake.members = [
    { user: { id: 'usr_gone', email: 'gone@example.com' }, role: 'member' },
    { user: { id: 'usr_down', email: 'down@example.com' }, role: 'admin' },
  ];
  v = createVerifier({ server: fake.url, apiKey: fake.verifierKey, events: false });
  const gone = await jwt('usr_gone');
  const down = await jwt('usr_down');
  expect(await v.verify(gone)).toMatchObject({ valid: true });
  expect(await v.verify(down, { scopes: ['admin'] })).toMatchObject({ valid: true });

  fake.members = [{ user: { id: 'usr_down', email: 'down@example.com' }, role: 'viewer' }];
  const changedAt = Date.now();
  // at once, the cached list may still answer; within 5 s and a little, it must not
  let goneAt: number | null = null;
  let downAt: number | null = null;
  while (Date.now() - changedAt < 8000 && (goneAt === null || downAt === null)) {
    if (goneAt === null && !(await v.verify(gone)).valid) goneAt = Date.now() - changedAt;
    if (downAt === null && !(await v.verify(down, { scopes: ['write'] })).valid)
      downAt = Date.now() - changedAt;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(goneAt, 'removed member still passes').not.toBeNull();
  expect(downAt, 'demoted member keeps the old scopes').not.toBeNull();
  expect(goneAt!).toBeLessThan(6000);
  expect(downAt!).toBeLessThan(6000);
  expect(await v.verify(gone)).toEqual({ valid: false, code: 'NOT_FOUND' });
}, 20_000);
