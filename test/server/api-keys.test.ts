import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../src/core/api-key.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
let now = Date.parse('2026-11-22T12:00:00.000Z');
const clock = () => new Date(now);

beforeAll(async () => {
  // a controllable clock: expiry and grace are checked without sleeping; cache off so each change shows at once
  s = await startTestServer({ clock, config: { keyCacheTtlMs: 0, rateLimitPerKey: 0 } });
});
afterAll(() => s.close());

type Headers = Record<string, string>;
async function call(method: string, url: string, auth?: string | Headers, body?: unknown) {
  const headers: Headers = typeof auth === 'string' ? { 'xi-api-key': auth } : (auth ?? {});
  const res = await s.app.inject({
    method: method as 'GET',
    url,
    headers,
    ...(body !== undefined ? { payload: body as object } : {}),
  });
  return { status: res.statusCode, headers: res.headers, body: res.body ? res.json() : undefined };
}

function expectError(
  res: { status: number; headers: Record<string, unknown>; body: { error: Record<string, unknown> } },
  status: number,
  code: string,
) {
  expect(res.status).toBe(status);
  expect(res.body.error).toMatchObject({ code, statusCode: status });
  expect(typeof res.body.error.message).toBe('string');
  expect(typeof res.body.error.category).toBe('string');
  expect(res.body.error.request_id).toBe(res.headers['x-request-id']);
}

describe('authentication', () => {
  it('accepts xi-api-key and Bearer, and sets x-breeze-api-key-id', async () => {
    const { apiKey, keyId, userId } = await s.seedKey({ email: 'auth@example.com' });
    const variants: Headers[] = [{ 'xi-api-key': apiKey }, { authorization: `Bearer ${apiKey}` }];
    for (const headers of variants) {
      const res = await call('GET', '/v1/me', headers);
      expect(res.status).toBe(200);
      expect(res.headers['x-breeze-api-key-id']).toBe(keyId);
      expect(res.body).toEqual({
        user: { id: userId, email: 'auth@example.com' },
        auth: { type: 'api_key', key_id: keyId, scopes: ['read', 'write', 'admin'] },
        // issue 12: the key's organization and project
        org: { id: expect.stringMatching(/^org_/), name: "auth@example.com's organization", role: 'owner' },
        project: { id: expect.stringMatching(/^proj_/), name: 'default' },
      });
    }
  });

  it('xi-api-key beats Bearer, both ways', async () => {
    const good = await s.seedKey({ email: 'prec@example.com' });
    const other = await s.seedKey({ email: 'prec2@example.com' });
    // valid xi-api-key + garbage Bearer: accepted as the xi-api-key
    let res = await call('GET', '/v1/me', { 'xi-api-key': good.apiKey, authorization: 'Bearer nonsense' });
    expect(res.status).toBe(200);
    expect(res.body.auth.key_id).toBe(good.keyId);
    // two valid keys: xi-api-key wins
    res = await call('GET', '/v1/me', { 'xi-api-key': other.apiKey, authorization: `Bearer ${good.apiKey}` });
    expect(res.body.auth.key_id).toBe(other.keyId);
    // bad xi-api-key + valid Bearer: refused, the Bearer value is ignored
    res = await call('GET', '/v1/me', {
      'xi-api-key': generateApiKey(),
      authorization: `Bearer ${good.apiKey}`,
    });
    expectError(res, 401, 'AUTH_REQUIRED');
    expect(res.headers['x-breeze-api-key-id']).toBeUndefined();
  });

  it('refuses a missing, malformed, wrong-checksum or unknown key with 401 and never echoes it', async () => {
    const { apiKey } = await s.seedKey();
    const wrongChecksum = apiKey.slice(0, -1) + (apiKey.endsWith('0') ? '1' : '0');
    const cases: Headers[] = [
      {},
      { 'xi-api-key': '' },
      { 'xi-api-key': 'brz_short' },
      { 'xi-api-key': wrongChecksum },
      { 'xi-api-key': generateApiKey() },
      { authorization: 'Basic abc' },
      { authorization: 'Bearer' },
      { authorization: `Bearer ${wrongChecksum}` },
    ];
    for (const headers of cases) {
      const res = await call('GET', '/v1/me', headers);
      expectError(res, 401, 'AUTH_REQUIRED');
      expect(JSON.stringify(res.body)).not.toContain(wrongChecksum.slice(4, 30));
    }
  });

  it('checks the checksum before any database lookup', async () => {
    const { apiKey } = await s.seedKey();
    const wrongChecksum = apiKey.slice(0, -1) + (apiKey.endsWith('0') ? '1' : '0');
    const original = s.store.keys.findByHash.bind(s.store.keys);
    let lookups = 0;
    s.store.keys.findByHash = async (h) => {
      lookups++;
      return original(h);
    };
    try {
      await call('GET', '/v1/me', wrongChecksum);
      expect(lookups).toBe(0);
      await call('GET', '/v1/me', generateApiKey());
      expect(lookups).toBe(1);
    } finally {
      s.store.keys.findByHash = original;
    }
  });

  it('refuses an expired key', async () => {
    const { apiKey } = await s.seedKey({ expiresAt: new Date(now + 60_000).toISOString() });
    expect((await call('GET', '/v1/me', apiKey)).status).toBe(200);
    now += 61_000;
    expectError(await call('GET', '/v1/me', apiKey), 401, 'AUTH_REQUIRED');
  });
});

describe('key management', () => {
  let admin: { apiKey: string; keyId: string; userId: string };
  beforeAll(async () => {
    admin = await s.seedKey({ email: 'owner@example.com' });
  });

  it('creates a key (201, plaintext once, default scopes read) that works', async () => {
    const res = await call('POST', '/v1/api-keys', admin.apiKey, { name: 'ci deploy' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      name: 'ci deploy',
      scopes: ['read'],
      status: 'active',
      expires_at: null,
      last_used_at: null,
      disabled_at: null,
      rotated_from: null,
      created_via: 'api',
    });
    expect(res.body.key_id).toMatch(/^key_/);
    expect(res.body.api_key).toMatch(/^brz_/);
    expect(res.body.prefix).toBe(res.body.api_key.slice(0, 12));
    const me = await call('GET', '/v1/me', res.body.api_key);
    expect(me.body.auth).toEqual({ type: 'api_key', key_id: res.body.key_id, scopes: ['read'] });
    // never shown again
    const read = await call('GET', `/v1/api-keys/${res.body.key_id}`, admin.apiKey);
    expect(read.status).toBe(200);
    expect(read.body.api_key).toBeUndefined();
    expect(JSON.stringify(read.body)).not.toContain(res.body.api_key);
  });

  it('creates with scopes (read always added), expires_in_s and expires_at', async () => {
    let res = await call('POST', '/v1/api-keys', admin.apiKey, {
      name: 'w',
      scopes: ['write'],
      expires_in_s: 3600,
    });
    expect(res.status).toBe(201);
    expect(res.body.scopes).toEqual(['read', 'write']);
    expect(res.body.status).toBe('expiring');
    expect(res.body.expires_at).toBe(new Date(now + 3600_000).toISOString());
    const at = new Date(now + 86400_000).toISOString();
    res = await call('POST', '/v1/api-keys', admin.apiKey, { name: 'x', expires_at: at });
    expect(res.body.expires_at).toBe(at);
  });

  it('takes expires_at: null (as the key object spells "never") and expires_in_s: null as no expiry', async () => {
    for (const body of [
      { name: 'never', expires_at: null },
      { name: 'never', expires_in_s: null },
      { name: 'never', expires_at: null, expires_in_s: null },
    ]) {
      const res = await call('POST', '/v1/api-keys', admin.apiKey, body);
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body).toMatchObject({ expires_at: null, status: 'active' });
    }
    // null beside the other one is that other one alone
    const res = await call('POST', '/v1/api-keys', admin.apiKey, {
      name: 'in',
      expires_at: null,
      expires_in_s: 3600,
    });
    expect(res.status).toBe(201);
    expect(res.body.expires_at).toBe(new Date(now + 3600_000).toISOString());
  });

  it('takes scopes: null and project_id: null as not given (default scopes, default project)', async () => {
    const res = await call('POST', '/v1/api-keys', admin.apiKey, {
      name: 'n',
      scopes: null,
      project_id: null,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.scopes).toEqual(['read']);
    // name stays required
    expectError(await call('POST', '/v1/api-keys', admin.apiKey, { name: null }), 400, 'VALIDATION_FAILED');
  });

  it('rejects bad create input with 400 VALIDATION_FAILED', async () => {
    const bodies = [
      {},
      { name: '' },
      { name: 42 },
      { name: '   ' },
      { name: 'x', scopes: ['root'] },
      { name: 'x', scopes: 'read' },
      { name: 'x', expires_in_s: -1 },
      { name: 'x', expires_in_s: '60' },
      { name: 'x', expires_at: 'tomorrow' },
      { name: 'x', expires_at: new Date(now - 1000).toISOString() },
      { name: 'x', expires_at: new Date(now + 9e6).toISOString(), expires_in_s: 60 },
      [],
      'name',
    ];
    for (const body of bodies)
      expectError(await call('POST', '/v1/api-keys', admin.apiKey, body), 400, 'VALIDATION_FAILED');
    const res = await s.app.inject({
      method: 'POST',
      url: '/v1/api-keys',
      headers: { 'xi-api-key': admin.apiKey, 'content-type': 'application/json' },
      payload: '{"name": "x",',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('VALIDATION_FAILED');
  });

  it('ignores unknown fields', async () => {
    const res = await call('POST', '/v1/api-keys', admin.apiKey, { name: 'extra', colour: 'blue' });
    expect(res.status).toBe(201);
    expect(res.body.colour).toBeUndefined();
  });

  it('answers 413 PAYLOAD_TOO_LARGE over 64 KiB', async () => {
    const res = await s.app.inject({
      method: 'POST',
      url: '/v1/api-keys',
      headers: { 'xi-api-key': admin.apiKey, 'content-type': 'application/json' },
      payload: JSON.stringify({ name: 'x'.repeat(65 * 1024) }),
    });
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('a key cannot grant scopes it does not hold (create and patch: 403)', async () => {
    const rw = await call('POST', '/v1/api-keys', admin.apiKey, { name: 'rw-admin', scopes: ['admin'] });
    expect(rw.body.scopes).toEqual(['read', 'admin']);
    expectError(
      await call('POST', '/v1/api-keys', rw.body.api_key, { name: 'n', scopes: ['write'] }),
      403,
      'FORBIDDEN',
    );
    const target = await call('POST', '/v1/api-keys', rw.body.api_key, { name: 'n' });
    expect(target.status).toBe(201);
    expectError(
      await call('PATCH', `/v1/api-keys/${target.body.key_id}`, rw.body.api_key, {
        scopes: ['read', 'write'],
      }),
      403,
      'FORBIDDEN',
    );
  });

  it('a key cannot obtain wider scopes by rotating a wider key (403), but may rotate narrower ones', async () => {
    const narrow = (await call('POST', '/v1/api-keys', admin.apiKey, { name: 'ra', scopes: ['admin'] })).body;
    const wide = (
      await call('POST', '/v1/api-keys', admin.apiKey, { name: 'rwa', scopes: ['write', 'admin'] })
    ).body;
    const ro = (await call('POST', '/v1/api-keys', admin.apiKey, { name: 'r' })).body;
    expectError(
      await call('POST', `/v1/api-keys/${wide.key_id}/rotate`, narrow.api_key, {}),
      403,
      'FORBIDDEN',
    );
    expect((await call('GET', '/v1/me', wide.api_key)).status).toBe(200); // untouched
    const ok = await call('POST', `/v1/api-keys/${ro.key_id}/rotate`, narrow.api_key, {});
    expect(ok.status).toBe(201);
    expect(ok.body.scopes).toEqual(['read']);
  });

  it('a rotation racing a disable fails with 409 and mints nothing', async () => {
    const k = (await call('POST', '/v1/api-keys', admin.apiKey, { name: 'race' })).body;
    const stale = (await s.store.keys.get(k.key_id))!; // what the rotate handler read
    await call('POST', `/v1/api-keys/${k.key_id}/disable`, admin.apiKey); // lands in between
    await expect(s.app.breeze.keys.rotate(stale, 60)).rejects.toMatchObject({ code: 'CONFLICT' });
    const successors = (await call('GET', '/v1/api-keys?limit=200', admin.apiKey)).body.data.filter(
      (x: { rotated_from: string | null }) => x.rotated_from === k.key_id,
    );
    expect(successors).toEqual([]);
  });

  it('patches name and scopes', async () => {
    const k = await call('POST', '/v1/api-keys', admin.apiKey, { name: 'old' });
    const res = await call('PATCH', `/v1/api-keys/${k.body.key_id}`, admin.apiKey, {
      name: 'new',
      scopes: ['write'],
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'new', scopes: ['read', 'write'] });
    const me = await call('GET', '/v1/me', k.body.api_key);
    expect(me.body.auth.scopes).toEqual(['read', 'write']);
  });

  it('a read-only key may read, rotate and delete itself, but gets 403 for managing others', async () => {
    const ro = (await call('POST', '/v1/api-keys', admin.apiKey, { name: 'ro' })).body;
    const other = (await call('POST', '/v1/api-keys', admin.apiKey, { name: 'sibling' })).body;
    expectError(await call('GET', '/v1/api-keys', ro.api_key), 403, 'FORBIDDEN');
    expectError(await call('POST', '/v1/api-keys', ro.api_key, { name: 'n' }), 403, 'FORBIDDEN');
    expectError(await call('GET', `/v1/api-keys/${other.key_id}`, ro.api_key), 403, 'FORBIDDEN');
    expectError(
      await call('PATCH', `/v1/api-keys/${other.key_id}`, ro.api_key, { name: 'n' }),
      403,
      'FORBIDDEN',
    );
    expectError(await call('POST', `/v1/api-keys/${other.key_id}/rotate`, ro.api_key, {}), 403, 'FORBIDDEN');
    expectError(await call('POST', `/v1/api-keys/${other.key_id}/disable`, ro.api_key), 403, 'FORBIDDEN');
    expectError(await call('POST', `/v1/api-keys/${other.key_id}/enable`, ro.api_key), 403, 'FORBIDDEN');
    expectError(await call('DELETE', `/v1/api-keys/${other.key_id}`, ro.api_key), 403, 'FORBIDDEN');
    expectError(
      await call('PATCH', `/v1/api-keys/${ro.key_id}`, ro.api_key, { name: 'n' }),
      403,
      'FORBIDDEN',
    );
    expectError(await call('POST', `/v1/api-keys/${ro.key_id}/disable`, ro.api_key), 403, 'FORBIDDEN');
    // the 403s carried the caller's key id
    const r = await call('GET', `/v1/api-keys/${other.key_id}`, ro.api_key);
    expect(r.headers['x-breeze-api-key-id']).toBe(ro.key_id);
    // itself: allowed
    expect((await call('GET', `/v1/api-keys/${ro.key_id}`, ro.api_key)).status).toBe(200);
    const rotated = await call('POST', `/v1/api-keys/${ro.key_id}/rotate`, ro.api_key, { grace_period_s: 0 });
    expect(rotated.status).toBe(201);
    expect((await call('DELETE', `/v1/api-keys/${rotated.body.key_id}`, rotated.body.api_key)).status).toBe(
      204,
    );
    expectError(await call('GET', '/v1/me', rotated.body.api_key), 401, 'AUTH_REQUIRED');
  });

  it("another user's key is 404 on every route, never 403", async () => {
    const stranger = await s.seedKey({ email: 'stranger@example.com' });
    const id = stranger.keyId;
    expectError(await call('GET', `/v1/api-keys/${id}`, admin.apiKey), 404, 'NOT_FOUND');
    expectError(await call('PATCH', `/v1/api-keys/${id}`, admin.apiKey, { name: 'x' }), 404, 'NOT_FOUND');
    expectError(await call('POST', `/v1/api-keys/${id}/rotate`, admin.apiKey, {}), 404, 'NOT_FOUND');
    expectError(await call('POST', `/v1/api-keys/${id}/disable`, admin.apiKey), 404, 'NOT_FOUND');
    expectError(await call('POST', `/v1/api-keys/${id}/enable`, admin.apiKey), 404, 'NOT_FOUND');
    expectError(await call('DELETE', `/v1/api-keys/${id}`, admin.apiKey), 404, 'NOT_FOUND');
    expectError(await call('GET', '/v1/api-keys/key_nonexistent', admin.apiKey), 404, 'NOT_FOUND');
    // and it still works for its owner
    expect((await call('GET', '/v1/me', stranger.apiKey)).status).toBe(200);
    // a non-admin key probing another user's key also gets 404 (existence is not revealed)
    const ro = (await call('POST', '/v1/api-keys', admin.apiKey, { name: 'probe' })).body;
    expectError(await call('GET', `/v1/api-keys/${id}`, ro.api_key), 404, 'NOT_FOUND');
  });

  it('rotation with grace: new key inherits name/scopes/expiry; old key works until the grace ends', async () => {
    const orig = (
      await call('POST', '/v1/api-keys', admin.apiKey, {
        name: 'deploy',
        scopes: ['write'],
        expires_in_s: 30 * 86400,
      })
    ).body;
    const res = await call('POST', `/v1/api-keys/${orig.key_id}/rotate`, admin.apiKey, {
      grace_period_s: 600,
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      name: 'deploy',
      scopes: ['read', 'write'],
      expires_at: orig.expires_at,
      rotated_from: orig.key_id,
      created_via: 'rotation',
    });
    expect(res.body.api_key).not.toBe(orig.api_key);
    expect(res.body.previous.key_id).toBe(orig.key_id);
    expect(res.body.previous.expires_at).toBe(new Date(now + 600_000).toISOString());
    expect((await call('GET', '/v1/me', orig.api_key)).status).toBe(200);
    expect((await call('GET', '/v1/me', res.body.api_key)).status).toBe(200);
    now += 601_000;
    expectError(await call('GET', '/v1/me', orig.api_key), 401, 'AUTH_REQUIRED');
    expect((await call('GET', '/v1/me', res.body.api_key)).status).toBe(200);
  });

  it('grace defaults to 3600 s', async () => {
    const orig = (await call('POST', '/v1/api-keys', admin.apiKey, { name: 'dflt' })).body;
    const res = await call('POST', `/v1/api-keys/${orig.key_id}/rotate`, admin.apiKey);
    expect(res.status).toBe(201);
    expect(res.body.previous.expires_at).toBe(new Date(now + 3600_000).toISOString());
  });

  it('grace_period_s: null is the default grace too', async () => {
    const orig = (await call('POST', '/v1/api-keys', admin.apiKey, { name: 'dflt-null' })).body;
    const res = await call('POST', `/v1/api-keys/${orig.key_id}/rotate`, admin.apiKey, {
      grace_period_s: null,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.previous.expires_at).toBe(new Date(now + 3600_000).toISOString());
  });

  it('rotation with grace 0 refuses the old key at once', async () => {
    const orig = (await call('POST', '/v1/api-keys', admin.apiKey, { name: 'now' })).body;
    const res = await call('POST', `/v1/api-keys/${orig.key_id}/rotate`, admin.apiKey, { grace_period_s: 0 });
    expect(res.body.previous.status).toBe('expired');
    expectError(await call('GET', '/v1/me', orig.api_key), 401, 'AUTH_REQUIRED');
    expect((await call('GET', '/v1/me', res.body.api_key)).status).toBe(200);
    // an expired key cannot be rotated again
    expectError(await call('POST', `/v1/api-keys/${orig.key_id}/rotate`, admin.apiKey, {}), 409, 'CONFLICT');
  });

  it("rotation never extends the old key's own earlier expiry", async () => {
    const orig = (await call('POST', '/v1/api-keys', admin.apiKey, { name: 'short', expires_in_s: 120 }))
      .body;
    const res = await call('POST', `/v1/api-keys/${orig.key_id}/rotate`, admin.apiKey, {
      grace_period_s: 86400,
    });
    expect(res.body.previous.expires_at).toBe(orig.expires_at);
    expect(res.body.expires_at).toBe(orig.expires_at);
  });

  it('disable -> refused -> enable -> accepted; rotating a disabled key is 409', async () => {
    const k = (await call('POST', '/v1/api-keys', admin.apiKey, { name: 'toggle' })).body;
    const d = await call('POST', `/v1/api-keys/${k.key_id}/disable`, admin.apiKey);
    expect(d.status).toBe(200);
    expect(d.body.status).toBe('disabled');
    expect(d.body.disabled_at).toBe(new Date(now).toISOString());
    expectError(await call('GET', '/v1/me', k.api_key), 401, 'AUTH_REQUIRED');
    expectError(await call('POST', `/v1/api-keys/${k.key_id}/rotate`, admin.apiKey, {}), 409, 'CONFLICT');
    const e = await call('POST', `/v1/api-keys/${k.key_id}/enable`, admin.apiKey);
    expect(e.body).toMatchObject({ status: 'active', disabled_at: null });
    expect((await call('GET', '/v1/me', k.api_key)).status).toBe(200);
  });

  it('delete: 204, then the key is refused and gone (404)', async () => {
    const k = (await call('POST', '/v1/api-keys', admin.apiKey, { name: 'bye' })).body;
    const res = await s.app.inject({
      method: 'DELETE',
      url: `/v1/api-keys/${k.key_id}`,
      headers: { 'xi-api-key': admin.apiKey },
    });
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    expectError(await call('GET', '/v1/me', k.api_key), 401, 'AUTH_REQUIRED');
    expectError(await call('GET', `/v1/api-keys/${k.key_id}`, admin.apiKey), 404, 'NOT_FOUND');
    expectError(await call('DELETE', `/v1/api-keys/${k.key_id}`, admin.apiKey), 404, 'NOT_FOUND');
    expectError(await call('POST', `/v1/api-keys/${k.key_id}/rotate`, admin.apiKey, {}), 404, 'NOT_FOUND');
  });
});

describe('listing', () => {
  it('pages newest first with next_cursor, and filters by status', async () => {
    const owner = await s.seedKey({ email: 'lister@example.com', name: 'first' });
    const ids = [owner.keyId];
    for (let i = 0; i < 7; i++) {
      now += 1000;
      ids.push((await call('POST', '/v1/api-keys', owner.apiKey, { name: `k${i}` })).body.key_id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const url: string = `/v1/api-keys?limit=3${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await call('GET', url, owner.apiKey);
      expect(res.status).toBe(200);
      expect(res.body.data.length).toBeLessThanOrEqual(3);
      seen.push(...res.body.data.map((k: { key_id: string }) => k.key_id));
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].reverse());

    const all = await call('GET', '/v1/api-keys', owner.apiKey);
    expect(all.body.data).toHaveLength(8);
    expect(all.body.next_cursor).toBeNull();

    await call('POST', `/v1/api-keys/${ids[3]}/disable`, owner.apiKey);
    const disabled = await call('GET', '/v1/api-keys?status=disabled', owner.apiKey);
    expect(disabled.body.data.map((k: { key_id: string }) => k.key_id)).toEqual([ids[3]]);
    const active = await call('GET', '/v1/api-keys?status=active', owner.apiKey);
    expect(active.body.data).toHaveLength(7);
  });

  it('takes empty parameters (?limit=&cursor=&status=) as not given', async () => {
    const { apiKey, keyId } = await s.seedKey({ email: 'blank-params@example.com' });
    for (const q of ['limit=&cursor=&status=', 'limit=', 'status=', 'cursor=', 'limit=1&status=']) {
      const res = await call('GET', `/v1/api-keys?${q}`, apiKey);
      expect(res.status, `${q}: ${JSON.stringify(res.body)}`).toBe(200);
      expect(res.body.data.map((k: { key_id: string }) => k.key_id)).toEqual([keyId]);
      expect(res.body.next_cursor).toBeNull();
    }
  });

  it('rejects bad paging input with 400', async () => {
    const { apiKey } = await s.seedKey({ email: 'pager@example.com' });
    for (const q of [
      'limit=0',
      'limit=201',
      'limit=abc',
      'status=gone',
      'cursor=%%%',
      'cursor=bm90LWEta2V5',
    ]) {
      expectError(await call('GET', `/v1/api-keys?${q}`, apiKey), 400, 'VALIDATION_FAILED');
    }
  });
});

describe('other routes', () => {
  it('GET /healthz, request ids, 404 shape, OpenAPI document', async () => {
    const h = await call('GET', '/healthz');
    expect(h.body).toEqual({ status: 'ok' });
    expect(h.headers['x-request-id']).toMatch(/^req_/);
    expectError(await call('GET', '/nope'), 404, 'NOT_FOUND');
    const doc = await call('GET', '/openapi.json');
    expect(doc.body.openapi).toMatch(/^3\.1/);
    for (const p of [
      '/v1/me',
      '/v1/api-keys',
      '/v1/api-keys/{key_id}',
      '/v1/api-keys/{key_id}/rotate',
      '/healthz',
    ]) {
      expect(doc.body.paths[p]).toBeDefined();
    }
  });
});
