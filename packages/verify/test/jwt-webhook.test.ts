import { createPrivateKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createVerifier, type Verifier } from '../src/verifier.js';
import { verifyWebhook } from '../src/webhook.js';
import { type FakeBreeze, makeKey, startFakeBreeze } from './fake-breeze.js';

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  jwk: Record<string, string>;
}

function newSigningKey(kid: string): SigningKey {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const { x } = publicKey.export({ format: 'jwk' }) as { x: string };
  return { kid, privateKey, jwk: { kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'Ed25519', use: 'sig' } };
}

let fake: FakeBreeze;
let v: Verifier | undefined;
beforeEach(async () => {
  fake = await startFakeBreeze();
});
afterEach(async () => {
  await v?.close();
  v = undefined;
  await fake.close();
});

async function token(k: SigningKey, o: { iss?: string; aud?: string; exp?: number; sub?: string } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'Ed25519', kid: k.kid, typ: 'JWT' })
    .setIssuer(o.iss ?? fake.url)
    .setAudience(o.aud ?? 'breeze')
    .setSubject(o.sub ?? 'usr_01JWT')
    .setIssuedAt(now)
    .setExpirationTime(o.exp ?? now + 3600)
    .sign(k.privateKey);
}

describe('JWTs: checked offline against the JWKS', () => {
  it('accepts a valid token and refuses expired, foreign and forged ones, without asking /v1/keys/verify', async () => {
    const k1 = newSigningKey('kid-1');
    fake.jwks = { keys: [k1.jwk] };
    v = createVerifier({
      server: fake.url,
      apiKey: fake.verifierKey,
      events: false,
      jwtUsers: ['usr_01JWT'],
    });
    expect(await v.verify(await token(k1))).toMatchObject({
      valid: true,
      type: 'jwt',
      user: { id: 'usr_01JWT', email: null },
      scopes: ['read', 'write', 'admin'],
      key_id: null,
    });
    expect(await v.verify(await token(k1), { scopes: ['verify'] })).toEqual({
      valid: false,
      code: 'INSUFFICIENT_SCOPE',
    });
    const now = Math.floor(Date.now() / 1000);
    expect(await v.verify(await token(k1, { exp: now - 3600 }))).toEqual({ valid: false, code: 'EXPIRED' });
    expect(await v.verify(await token(k1, { aud: 'other' }))).toEqual({ valid: false, code: 'NOT_FOUND' });
    expect(await v.verify(await token(k1, { iss: 'https://evil.example' }))).toEqual({
      valid: false,
      code: 'NOT_FOUND',
    });
    const forged = await token(newSigningKey('kid-1'));
    expect(await v.verify(forged)).toEqual({ valid: false, code: 'NOT_FOUND' });
    const t = await token(k1);
    expect(await v.verify(`${t.slice(0, -4)}AAAA`)).toMatchObject({ valid: false });
    expect(fake.verifyCalls).toHaveLength(0);
    expect(fake.jwksFetches).toBe(1);
  });

  it('follows a key rollover: a token with an unknown kid refetches the JWKS', async () => {
    const k1 = newSigningKey('kid-1');
    const k2 = newSigningKey('kid-2');
    fake.jwks = { keys: [k1.jwk] };
    v = createVerifier({
      server: fake.url,
      apiKey: fake.verifierKey,
      events: false,
      jwtUsers: ['usr_01JWT'],
    });
    expect(await v.verify(await token(k1))).toMatchObject({ valid: true });
    fake.jwks = { keys: [k2.jwk, k1.jwk] };
    expect(await v.verify(await token(k2))).toMatchObject({ valid: true });
    expect(await v.verify(await token(k1))).toMatchObject({ valid: true });
    expect(fake.jwksFetches).toBe(2);
  });

  it('throws (never valid) when the JWKS cannot be fetched', async () => {
    const k1 = newSigningKey('kid-1');
    const url = fake.url;
    await fake.close();
    v = createVerifier({
      server: url,
      apiKey: makeKey(),
      events: false,
      timeoutMs: 1000,
      jwt: true,
      allowJwt: () => true,
    });
    await expect(v.verify(await token(k1, { iss: url }))).rejects.toMatchObject({
      name: 'BreezeVerifyError',
    });
    fake = await startFakeBreeze();
  });
});

describe("JWTs: members of the verifier key's organization by default, or the users the application allows", () => {
  // a valid JWT proves a Breeze user (anyone can sign up on a shared server), not a member of an
  // organization: by default the verifier admits members of its own key's organization only
  it("by default a member's JWT passes, offline, with the organization and the role's scopes", async () => {
    const k1 = newSigningKey('kid-1');
    fake.jwks = { keys: [k1.jwk] };
    fake.members = [
      { user: { id: 'usr_owner', email: 'owner@example.com' }, role: 'owner' },
      { user: { id: 'usr_member', email: 'member@example.com' }, role: 'member' },
      { user: { id: 'usr_viewer', email: 'viewer@example.com' }, role: 'viewer' },
    ];
    v = createVerifier({ server: fake.url, apiKey: fake.verifierKey, events: false });
    expect(await v.verify(await token(k1, { sub: 'usr_owner' }))).toMatchObject({
      valid: true,
      code: 'VALID',
      type: 'jwt',
      key_id: null,
      org_id: 'org_01TEST',
      project_id: null,
      user: { id: 'usr_owner', email: 'owner@example.com' },
      scopes: ['read', 'write', 'admin'],
    });
    expect(await v.verify(await token(k1, { sub: 'usr_member' }))).toMatchObject({
      valid: true,
      scopes: ['read', 'write'],
    });
    expect(await v.verify(await token(k1, { sub: 'usr_viewer' }), { scopes: ['write'] })).toEqual({
      valid: false,
      code: 'INSUFFICIENT_SCOPE',
    });
    // someone who merely signed up on the server: a genuine token, no membership
    expect(await v.verify(await token(k1, { sub: 'usr_stranger' }))).toEqual({
      valid: false,
      code: 'NOT_FOUND',
    });
    // signature, audience and issuer are still checked (offline: no verification request)
    expect(await v.verify(await token(k1, { sub: 'usr_owner', aud: 'other' }))).toMatchObject({
      valid: false,
    });
    expect(fake.verifyCalls).toHaveLength(0);
    // the member list is cached: four tokens, one list (plus one refetch for the stranger at most)
    expect(fake.memberFetches).toBeLessThanOrEqual(2);
  });

  it('jwt: false refuses every JWT without reading the JWKS; bad options are refused at creation', async () => {
    const k1 = newSigningKey('kid-1');
    fake.jwks = { keys: [k1.jwk] };
    fake.members = [{ user: { id: 'usr_01JWT', email: 'dev@example.com' }, role: 'owner' }];
    v = createVerifier({ server: fake.url, apiKey: fake.verifierKey, events: false, jwt: false });
    expect(await v.verify(await token(k1))).toEqual({ valid: false, code: 'MALFORMED' });
    expect(fake.jwksFetches).toBe(0);
    expect(fake.memberFetches).toBe(0);
    expect(() =>
      createVerifier({
        server: fake.url,
        apiKey: fake.verifierKey,
        events: false,
        jwtUsers: 'usr_1' as never,
      }),
    ).toThrow(TypeError);
    expect(() =>
      createVerifier({ server: fake.url, apiKey: fake.verifierKey, events: false, allowJwt: true as never }),
    ).toThrow(TypeError);
  });

  it('jwtUsers: listed users pass, any other user is NOT_FOUND; jwt: false wins', async () => {
    const k1 = newSigningKey('kid-1');
    fake.jwks = { keys: [k1.jwk] };
    v = createVerifier({
      server: fake.url,
      apiKey: fake.verifierKey,
      events: false,
      jwtUsers: ['usr_member'],
    });
    expect(await v.verify(await token(k1, { sub: 'usr_member' }))).toMatchObject({
      valid: true,
      type: 'jwt',
      user: { id: 'usr_member' },
    });
    expect(await v.verify(await token(k1, { sub: 'usr_stranger' }))).toEqual({
      valid: false,
      code: 'NOT_FOUND',
    });
    // a stranger is refused before the scopes are looked at
    expect(await v.verify(await token(k1, { sub: 'usr_stranger' }), { scopes: ['verify'] })).toEqual({
      valid: false,
      code: 'NOT_FOUND',
    });
    await v.close();
    v = createVerifier({
      server: fake.url,
      apiKey: fake.verifierKey,
      events: false,
      jwt: false,
      jwtUsers: ['usr_member'],
    });
    expect(await v.verify(await token(k1, { sub: 'usr_member' }))).toEqual({
      valid: false,
      code: 'MALFORMED',
    });
  });

  it('allowJwt sees the verified claims and decides (async too); with jwtUsers a token must pass both', async () => {
    const k1 = newSigningKey('kid-1');
    fake.jwks = { keys: [k1.jwk] };
    const seen: unknown[] = [];
    v = createVerifier({
      server: fake.url,
      apiKey: fake.verifierKey,
      events: false,
      allowJwt: async (claims) => {
        seen.push(claims);
        return claims.sub.endsWith('_ok');
      },
    });
    expect(await v.verify(await token(k1, { sub: 'usr_ok' }))).toMatchObject({ valid: true });
    expect(await v.verify(await token(k1, { sub: 'usr_no' }))).toEqual({ valid: false, code: 'NOT_FOUND' });
    expect(seen[0]).toMatchObject({ sub: 'usr_ok', iss: fake.url, aud: 'breeze' });
    // a forged token never reaches the application's check
    await v.verify(await token(newSigningKey('kid-1'), { sub: 'usr_ok' }));
    expect(seen).toHaveLength(2);
    await v.close();
    v = createVerifier({
      server: fake.url,
      apiKey: fake.verifierKey,
      events: false,
      jwtUsers: ['usr_a_ok', 'usr_b'],
      allowJwt: (claims) => claims.sub.endsWith('_ok'),
    });
    expect(await v.verify(await token(k1, { sub: 'usr_a_ok' }))).toMatchObject({ valid: true });
    expect(await v.verify(await token(k1, { sub: 'usr_b' }))).toEqual({ valid: false, code: 'NOT_FOUND' });
    expect(await v.verify(await token(k1, { sub: 'usr_c_ok' }))).toEqual({ valid: false, code: 'NOT_FOUND' });
  });
});

function signWebhook(k: SigningKey, body: string, t = Math.floor(Date.now() / 1000)): string {
  const sig = sign(
    null,
    Buffer.from(`${t}.${body}`),
    createPrivateKey(k.privateKey.export({ format: 'pem', type: 'pkcs8' })),
  );
  return `t=${t},kid=${k.kid},sig=${sig.toString('base64url')}`;
}

describe('verifyWebhook with orgId', () => {
  // one server-wide key signs every organization's deliveries: a genuine signature proves Breeze sent
  // it, not that it is about your organization
  it('accepts an event of that organization and refuses another, or one without org_id', async () => {
    const k = newSigningKey(`kid-${Math.random()}`);
    fake.jwks = { keys: [k.jwk] };
    const jwksUrl = `${fake.url}/.well-known/jwks.json`;
    const event = (data: Record<string, unknown>) =>
      JSON.stringify({ id: 'evt_1', type: 'key.created', created_at: new Date().toISOString(), data });
    const ours = event({ action: 'key.created', org_id: 'org_A' });
    expect(await verifyWebhook(ours, signWebhook(k, ours), { jwksUrl, orgId: 'org_A' })).toMatchObject({
      data: { org_id: 'org_A' },
    });
    const theirs = event({ action: 'key.created', org_id: 'org_B' });
    await expect(
      verifyWebhook(theirs, signWebhook(k, theirs), { jwksUrl, orgId: 'org_A' }),
    ).rejects.toMatchObject({ name: 'BreezeWebhookError', code: 'WRONG_ORG' });
    const none = event({ action: 'key.created' });
    await expect(
      verifyWebhook(none, signWebhook(k, none), { jwksUrl, orgId: 'org_A' }),
    ).rejects.toMatchObject({
      code: 'WRONG_ORG',
    });
    // without orgId: as before
    expect(await verifyWebhook(theirs, signWebhook(k, theirs), { jwksUrl })).toMatchObject({ id: 'evt_1' });
    await expect(verifyWebhook(ours, signWebhook(k, ours), { jwksUrl, orgId: '' })).rejects.toThrow(
      TypeError,
    );
  });
});

describe('verifyWebhook while the JWKS fails', () => {
  it('a stream of deliveries makes about one JWKS read a second, not one each', async () => {
    const k = newSigningKey(`kid-${Math.random()}`);
    fake.jwksStatus = 503;
    const jwksUrl = `${fake.url}/.well-known/jwks.json`;
    const body = JSON.stringify({
      id: 'evt_1',
      type: 'ping',
      created_at: new Date().toISOString(),
      data: {},
    });
    const started = performance.now();
    for (let i = 0; i < 50; i++) {
      await expect(verifyWebhook(body, signWebhook(k, body), { jwksUrl })).rejects.toMatchObject({
        code: 'JWKS_UNAVAILABLE',
      });
    }
    const seconds = (performance.now() - started) / 1000;
    expect(fake.jwksFetches).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
    // once it answers again (a second later), deliveries verify
    fake.jwksStatus = null;
    fake.jwks = { keys: [k.jwk] };
    await new Promise((r) => setTimeout(r, 1100));
    expect(await verifyWebhook(body, signWebhook(k, body), { jwksUrl })).toMatchObject({ id: 'evt_1' });
  });
});

describe('verifyWebhook', () => {
  const body = JSON.stringify({
    id: 'evt_1',
    type: 'key.created',
    created_at: new Date().toISOString(),
    data: { action: 'key.created', target: { type: 'key', id: 'key_1' } },
  });

  it('returns the event for a valid signature, and refuses tampering, stale and future timestamps', async () => {
    const k = newSigningKey(`kid-${Math.random()}`);
    fake.jwks = { keys: [k.jwk] };
    const jwksUrl = `${fake.url}/.well-known/jwks.json`;
    const header = signWebhook(k, body);
    expect(await verifyWebhook(body, header, { jwksUrl })).toMatchObject({
      id: 'evt_1',
      type: 'key.created',
    });
    expect(await verifyWebhook(new TextEncoder().encode(body), header, { jwksUrl })).toMatchObject({
      id: 'evt_1',
    });
    await expect(verifyWebhook(body.replace('key_1', 'key_2'), header, { jwksUrl })).rejects.toMatchObject({
      code: 'BAD_SIGNATURE',
    });
    const now = Math.floor(Date.now() / 1000);
    await expect(verifyWebhook(body, signWebhook(k, body, now - 400), { jwksUrl })).rejects.toMatchObject({
      code: 'TIMESTAMP_OUT_OF_TOLERANCE',
    });
    await expect(verifyWebhook(body, signWebhook(k, body, now + 400), { jwksUrl })).rejects.toMatchObject({
      code: 'TIMESTAMP_OUT_OF_TOLERANCE',
    });
    expect(await verifyWebhook(body, signWebhook(k, body, now - 200), { jwksUrl })).toMatchObject({
      id: 'evt_1',
    });
    await expect(
      verifyWebhook(body, signWebhook(k, body, now - 200), { jwksUrl, toleranceS: 60 }),
    ).rejects.toMatchObject({
      code: 'TIMESTAMP_OUT_OF_TOLERANCE',
    });
    // a tolerance that is not a number of seconds is refused, never read as "no limit"
    for (const toleranceS of [Number.NaN, Number.POSITIVE_INFINITY, -1, '300' as unknown as number]) {
      await expect(
        verifyWebhook(body, signWebhook(k, body, now - 100_000), { jwksUrl, toleranceS }),
      ).rejects.toThrow(TypeError);
    }
    // the timestamp is signed: moving it breaks the signature
    // (one second before the header's own time: `now` may already be a second past it)
    const signedAt = Number(/t=(\d+)/.exec(header)?.[1]);
    const moved = header.replace(/t=\d+/, `t=${signedAt - 1}`);
    expect(moved).not.toBe(header);
    await expect(verifyWebhook(body, moved, { jwksUrl })).rejects.toMatchObject({ code: 'BAD_SIGNATURE' });
    for (const bad of [undefined, '', 'sig=abc', `t=${now},kid=${k.kid}`, 'v1=deadbeef']) {
      await expect(verifyWebhook(body, bad, { jwksUrl })).rejects.toMatchObject({
        code: 'MALFORMED_SIGNATURE',
      });
    }
    expect(fake.jwksFetches).toBe(1);
  });

  /** A receiver that has read the key set with k1, then the server rolls over to k2. */
  async function rolledOver() {
    const k1 = newSigningKey(`kid-${Math.random()}`);
    const k2 = newSigningKey(`kid-${Math.random()}`);
    fake.jwks = { keys: [k1.jwk] };
    const jwksUrl = `${fake.url}/.well-known/jwks.json`;
    await verifyWebhook(body, signWebhook(k1, body), { jwksUrl });
    fake.jwks = { keys: [k2.jwk, k1.jwk] };
    return { k2, jwksUrl };
  }

  it('refetches the JWKS for an unknown kid (rollover) and refuses a kid it still does not list', async () => {
    const { k2, jwksUrl } = await rolledOver();
    expect(await verifyWebhook(body, signWebhook(k2, body), { jwksUrl })).toMatchObject({ id: 'evt_1' });
    await new Promise((r) => setTimeout(r, 1050));
    await expect(
      verifyWebhook(body, signWebhook(newSigningKey('kid-x'), body), { jwksUrl }),
    ).rejects.toMatchObject({
      code: 'UNKNOWN_KID',
    });
    expect(fake.jwksFetches).toBe(3);
  });

  it('a rollover within a second of the last read still refetches, even when the wait ends a little early', async () => {
    const { k2, jwksUrl } = await rolledOver();
    // timers may fire a millisecond before the clock says their time is up; make every wait end
    // 5 ms early so the check after it sees "not a second yet"
    const real = globalThis.setTimeout;
    const early = ((fn: () => void, ms?: number) =>
      real(fn, Math.max(0, (ms ?? 0) - 5))) as typeof setTimeout;
    globalThis.setTimeout = early;
    try {
      expect(await verifyWebhook(body, signWebhook(k2, body), { jwksUrl })).toMatchObject({ id: 'evt_1' });
    } finally {
      globalThis.setTimeout = real;
    }
    expect(fake.jwksFetches).toBe(2);
  });

  it('refuses a signed body that is not a Breeze event', async () => {
    const k = newSigningKey(`kid-${Math.random()}`);
    fake.jwks = { keys: [k.jwk] };
    const jwksUrl = `${fake.url}/.well-known/jwks.json`;
    for (const b of ['not json', '[]', '{"id":"x"}']) {
      await expect(verifyWebhook(b, signWebhook(k, b), { jwksUrl })).rejects.toMatchObject({
        code: 'BAD_BODY',
      });
    }
  });
});
