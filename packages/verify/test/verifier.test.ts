import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BreezeVerifyError } from '../src/errors.js';
import { RevocationStream } from '../src/events.js';
import { breezeExpress } from '../src/express.js';
import { breezeFastify, requireBreeze } from '../src/fastify.js';
import { createFetchGuard } from '../src/fetch.js';
import { decide, decideNow, nodeCredential, prepareGuard } from '../src/guard.js';
import type { VerifyOptions, VerifyResult } from '../src/types.js';
import { createVerifier, INSPECT, type Verifier, type VerifierOptions } from '../src/verifier.js';
import { type FakeBreeze, makeKey, startFakeBreeze, until, VALID } from './fake-breeze.js';

let fake: FakeBreeze;
const verifiers: Verifier[] = [];

beforeEach(async () => {
  fake = await startFakeBreeze();
});
afterEach(async () => {
  await Promise.all(verifiers.splice(0).map((v) => v.close()));
  await fake.close();
});

function verifier(o: Partial<VerifierOptions> = {}): Verifier {
  const v = createVerifier({ server: fake.url, apiKey: fake.verifierKey, ...o });
  verifiers.push(v);
  return v;
}

async function connected(v: Verifier): Promise<void> {
  await until(() => v.streamConnected);
}

/**
 * A fetch through which the fake server counts the checks of `key` in its current window: `limit`
 * valid answers (with the window's rate-limit figures), then RATE_LIMITED. `window.used = 0` opens
 * a new window; `resetS` is read at each check.
 */
function countingServer(key: string, limit: number, resetS: () => number) {
  const window = { used: 0 };
  const fetch: typeof globalThis.fetch = async (url, init) => {
    if (String(url).endsWith('/v1/keys/verify')) {
      window.used++;
      fake.answers.set(
        key,
        window.used <= limit
          ? VALID('key_A', ['read'], {
              ratelimit: { limit, remaining: limit - window.used, reset_s: resetS() },
            })
          : { valid: false, code: 'RATE_LIMITED', retry_after_s: resetS() },
      );
    }
    return globalThis.fetch(url, init);
  };
  return { fetch, window };
}

describe('createVerifier: answers and cache', () => {
  it("answers the server's verdict and reuses it: one request for repeated checks of a key", async () => {
    const key = makeKey();
    fake.answers.set(key, VALID('key_A'));
    const v = verifier();
    await connected(v);
    const first = await v.verify(key);
    expect(first).toMatchObject({ valid: true, code: 'VALID', key_id: 'key_A', type: 'api_key' });
    for (let i = 0; i < 5; i++) expect(await v.verify(key)).toMatchObject({ valid: true, key_id: 'key_A' });
    expect(fake.verifyCalls).toHaveLength(1);
  });

  it('keys its cache by the SHA-256 of the key, never the key itself', async () => {
    const key = makeKey();
    fake.answers.set(key, VALID('key_A'));
    const v = verifier();
    await v.verify(key);
    await v.verify(makeKey());
    const keys = v[INSPECT]();
    expect(keys).toContain(createHash('sha256').update(key).digest('base64url'));
    for (const k of keys) expect(k).not.toContain('brz_');
  });

  it('asks again once cacheTtlMs has passed', async () => {
    const key = makeKey();
    fake.answers.set(key, VALID('key_A'));
    const v = verifier({ cacheTtlMs: 500 });
    await connected(v);
    await v.verify(key);
    await v.verify(key);
    expect(fake.verifyCalls).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 550));
    await v.verify(key);
    expect(fake.verifyCalls).toHaveLength(2);
  });

  it('by default reuses an answer for 60 s while the stream is up, then asks again', async () => {
    const key = makeKey();
    // a rate-limit window longer than the TTL, so that only the TTL can end the cached answer
    fake.answers.set(
      key,
      VALID('key_A', ['read'], { ratelimit: { limit: 600, remaining: 599, reset_s: 3600 } }),
    );
    const v = verifier();
    await connected(v);
    vi.useFakeTimers({ toFake: ['performance'] });
    try {
      await v.verify(key);
      // 59 s with the server's pings (at least every 15 s) arriving on the stream
      for (let i = 0; i < 4; i++) {
        vi.advanceTimersByTime(14_750);
        fake.ping();
        await new Promise((r) => setTimeout(r, 50));
      }
      await v.verify(key);
      expect(fake.verifyCalls).toHaveLength(1);
      expect(v.streamConnected).toBe(true);
      vi.advanceTimersByTime(2_000);
      await v.verify(key);
      expect(fake.verifyCalls).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('caps the cache at maxEntries, forgetting the least recently used key first', async () => {
    const keys = Array.from({ length: 5 }, () => makeKey());
    keys.forEach((k, i) => {
      fake.answers.set(k, VALID(`key_${i}`));
    });
    const v = verifier({ maxEntries: 3 });
    await connected(v);
    for (const k of keys) await v.verify(k);
    expect(v.cacheSize).toBe(3);
    expect(fake.verifyCalls).toHaveLength(5);
    await v.verify(keys[4]!); // most recent: cached
    expect(fake.verifyCalls).toHaveLength(5);
    await v.verify(keys[0]!); // evicted: asked again
    expect(fake.verifyCalls).toHaveLength(6);
  });

  it('makes ONE request for concurrent checks of an uncached key', async () => {
    const key = makeKey();
    fake.answers.set(key, VALID('key_A'));
    fake.delayMs = 100;
    const v = verifier();
    const results = await Promise.all(Array.from({ length: 25 }, () => v.verify(key)));
    expect(results.every((r) => r.valid)).toBe(true);
    expect(fake.verifyCalls).toHaveLength(1);
  });

  it('charges concurrent checks that shared one answer: a burst of a cold key never passes its limit', async () => {
    const key = makeKey();
    // a server that counts: limit 3 a window, then RATE_LIMITED
    const counting = countingServer(key, 3, () => 60);
    fake.delayMs = 100;
    const v = verifier({ fetch: counting.fetch });
    await connected(v);
    const results = await Promise.all(Array.from({ length: 10 }, () => v.verify(key)));
    expect(results.filter((r) => r.valid)).toHaveLength(3);
    expect(results.filter((r) => r.code === 'RATE_LIMITED')).toHaveLength(7);
  });

  it("does not charge a new window of the server with the last window's local uses", async () => {
    const key = makeKey();
    // a server that counts uses per window: limit 3; its window ends in 1 s, then a new one opens
    let resetS = 1;
    const counting = countingServer(key, 3, () => resetS);
    const v = verifier({ fetch: counting.fetch, events: false });
    vi.useFakeTimers({ toFake: ['performance'] });
    try {
      for (let i = 0; i < 3; i++) expect(await v.verify(key)).toMatchObject({ valid: true });
      expect(fake.verifyCalls).toHaveLength(1);
      // the server's window has ended (its reset_s was rounded up: the cache's ends a little later)
      vi.advanceTimersByTime(900);
      counting.window.used = 0;
      resetS = 60;
      const next = [];
      for (let i = 0; i < 3; i++) next.push((await v.verify(key)).code);
      expect(next).toEqual(['VALID', 'VALID', 'VALID']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('makes one request at a time for concurrent checks of an uncached key with different scopes', async () => {
    const key = makeKey();
    fake.answers.set(key, VALID('key_A', ['read', 'write']));
    fake.delayMs = 100;
    const v = verifier();
    await connected(v);
    const results = await Promise.all([
      v.verify(key),
      v.verify(key, { scopes: ['write'] }),
      v.verify(key, { scopes: ['read'] }),
      v.verify(key, { scopes: ['admin'] }),
      v.verify(key, { scopes: ['read', 'write'] }),
    ]);
    expect(results.map((r) => r.code)).toEqual(['VALID', 'VALID', 'VALID', 'INSUFFICIENT_SCOPE', 'VALID']);
    // the first answer (the key's effective scopes) serves every set it covers; "admin" asks after it
    expect(fake.verifyCalls).toEqual([{ key }, { key, scopes: ['admin'] }]);
    expect(fake.maxConcurrentVerifications).toBe(1);
  });

  it('reuses an answer at most 1 s while the revocation stream is down, and the full TTL while it is up', async () => {
    const key = makeKey();
    fake.answers.set(key, VALID('key_A'));
    fake.eventsStatus = 503;
    const down = verifier();
    await down.verify(key);
    await new Promise((r) => setTimeout(r, 250));
    await down.verify(key);
    expect(fake.verifyCalls).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 900));
    expect(down.streamConnected).toBe(false);
    await down.verify(key);
    expect(fake.verifyCalls).toHaveLength(2);

    fake.eventsStatus = null;
    const up = verifier();
    await connected(up);
    await up.verify(key);
    await new Promise((r) => setTimeout(r, 1150));
    await up.verify(key);
    expect(fake.verifyCalls).toHaveLength(3);
  });

  it('checks scopes against the effective scopes of a cached VALID answer', async () => {
    const key = makeKey();
    fake.answers.set(key, VALID('key_A', ['read']));
    const v = verifier();
    await connected(v);
    expect(await v.verify(key, { scopes: ['read'] })).toMatchObject({ valid: true });
    expect(await v.verify(key)).toMatchObject({ valid: true });
    expect(fake.verifyCalls).toHaveLength(1);
    expect(await v.verify(key, { scopes: ['write'] })).toEqual({ valid: false, code: 'INSUFFICIENT_SCOPE' });
    expect(fake.verifyCalls.at(-1)).toEqual({ key, scopes: ['write'] });
    // the refusal for these scopes is remembered too
    expect(await v.verify(key, { scopes: ['write'] })).toEqual({ valid: false, code: 'INSUFFICIENT_SCOPE' });
    expect(fake.verifyCalls).toHaveLength(2);
  });

  it('refuses a malformed key locally (MALFORMED, no request)', async () => {
    const v = verifier();
    const good = makeKey();
    const typo = `${good.slice(0, 10)}${good[10] === 'a' ? 'b' : 'a'}${good.slice(11)}`;
    for (const k of [
      '',
      'nope',
      typo,
      `${good}x`,
      'brz_\u0000',
      good.toUpperCase() === good ? 'x' : good.toUpperCase(),
    ]) {
      expect(await v.verify(k)).toEqual({ valid: false, code: 'MALFORMED' });
    }
    expect(fake.verifyCalls).toHaveLength(0);
  });

  it('spends the reported rate-limit window locally, then lets the server decide', async () => {
    const key = makeKey();
    fake.answers.set(key, VALID('key_A', ['read'], { ratelimit: { limit: 3, remaining: 2, reset_s: 60 } }));
    const v = verifier();
    await connected(v);
    for (let i = 0; i < 3; i++) await v.verify(key);
    expect(fake.verifyCalls).toHaveLength(1);
    fake.answers.set(key, { valid: false, code: 'RATE_LIMITED', retry_after_s: 42 });
    expect(await v.verify(key)).toEqual({ valid: false, code: 'RATE_LIMITED', retry_after_s: 42 });
    expect(fake.verifyCalls).toHaveLength(2);
  });

  it('charges a server answer with the uses it spent locally: a warm cache never lets a key past its limit', async () => {
    const key = makeKey();
    fake.answers.set(key, VALID('key_A', ['read'], { ratelimit: { limit: 3, remaining: 2, reset_s: 60 } }));
    const v = verifier();
    await connected(v);
    for (let i = 0; i < 3; i++) expect(await v.verify(key)).toMatchObject({ valid: true });
    expect(fake.verifyCalls).toHaveLength(1);
    // the server saw one verification of the three, so it still says "valid, 1 left": the fourth use
    // of a limit of 3 is over it all the same
    fake.answers.set(key, VALID('key_A', ['read'], { ratelimit: { limit: 3, remaining: 1, reset_s: 59 } }));
    const fourth = await v.verify(key);
    expect(fourth).toMatchObject({ valid: false, code: 'RATE_LIMITED' });
    expect(fourth.valid === false && fourth.retry_after_s).toBeGreaterThanOrEqual(59);
    expect(fake.verifyCalls).toHaveLength(2);
    // and later checks in the window are refused without a request each
    expect(await v.verify(key)).toMatchObject({ valid: false, code: 'RATE_LIMITED' });
    expect(fake.verifyCalls).toHaveLength(2);
  });
});

describe('createVerifier: the revocation stream', () => {
  it('drops a cached key when key.revoked names it', async () => {
    const key = makeKey();
    const other = makeKey();
    fake.answers.set(key, VALID('key_A'));
    fake.answers.set(other, VALID('key_B'));
    const v = verifier();
    await connected(v);
    await v.verify(key);
    await v.verify(other);
    fake.answers.set(key, { valid: false, code: 'DISABLED' });
    fake.pushRevoked('key_A');
    await until(() => v.cacheSize === 1);
    expect(await v.verify(key)).toEqual({ valid: false, code: 'DISABLED' });
    expect(await v.verify(other)).toMatchObject({ valid: true, key_id: 'key_B' });
    expect(fake.verifyCalls.map((c) => c.key)).toEqual([key, other, key]);
  });

  it('a VALID answer right after key.revoked (another instance not yet told) is not cached', async () => {
    const key = makeKey();
    fake.answers.set(key, VALID('key_A'));
    const v = verifier();
    await connected(v);
    await v.verify(key);
    fake.pushRevoked('key_A');
    await until(() => v.cacheSize === 0);
    // the server still says VALID (an instance whose cache has not caught up, or the key enabled
    // again): answered as the server says, but asked again next time, not cached for the TTL
    expect(await v.verify(key)).toMatchObject({ valid: true, key_id: 'key_A' });
    expect(v.cacheSize).toBe(0);
    fake.answers.set(key, { valid: false, code: 'DISABLED' });
    expect(await v.verify(key)).toEqual({ valid: false, code: 'DISABLED' });
    expect(fake.verifyCalls.map((c) => c.key)).toEqual([key, key, key]);
  });

  it('reconnects after a dropped stream with Last-Event-ID and applies what it missed', async () => {
    const key = makeKey();
    fake.answers.set(key, VALID('key_A'));
    const v = verifier();
    await connected(v);
    const id = fake.pushRevoked('key_unrelated');
    await new Promise((r) => setTimeout(r, 50));
    fake.eventsStatus = 503;
    fake.dropStreams();
    await until(() => !v.streamConnected);
    await v.verify(key); // cached while down...
    fake.pushRevoked('key_A'); // ...revoked while nobody listens
    fake.answers.set(key, { valid: false, code: 'DISABLED' });
    fake.eventsStatus = null;
    await until(() => v.streamConnected, 5000);
    await until(() => v.cacheSize === 0);
    expect(fake.eventConnections[0]).toBe('');
    expect(fake.eventConnections.at(-1)).toBe(String(id));
    expect(await v.verify(key)).toEqual({ valid: false, code: 'DISABLED' });
  });

  it('after a resumed reconnect, an answer cached before it waits for the replay: a slow server cannot bring back a revoked key', async () => {
    const key = makeKey();
    fake.answers.set(key, VALID('key_A'));
    const v = verifier();
    await connected(v);
    expect((await v.verify(key)).valid).toBe(true); // cached while the stream is up
    fake.pushRevoked('key_unrelated'); // an event id to resume from
    await new Promise((r) => setTimeout(r, 50));
    fake.eventsStatus = 503;
    fake.dropStreams();
    await until(() => !v.streamConnected);
    fake.pushRevoked('key_A'); // revoked while nobody listens
    fake.answers.set(key, { valid: false, code: 'DISABLED' });
    await new Promise((r) => setTimeout(r, 1100)); // the cached answer is now past the 1 s rule
    // the server sends the headers at once and the missed events 600 ms later
    fake.replayDelayMs = 600;
    fake.eventsStatus = null;
    await until(() => v.streamConnected, 5000);
    expect(await v.verify(key)).toEqual({ valid: false, code: 'DISABLED' });
  });

  it('does not trust a connection that has gone quiet for longer than the ping interval allows', async () => {
    const stream = new RevocationStream({
      url: `${fake.url}/v1/keys/events`,
      apiKey: fake.verifierKey,
      fetch: globalThis.fetch.bind(globalThis),
      quietLimitMs: 300,
      idleTimeoutMs: 10_000,
      minBackoffMs: 50,
      maxBackoffMs: 100,
      onRevoked: () => {},
      onUp: () => {},
      onDown: () => {},
      onError: () => {},
    });
    try {
      await until(() => stream.connected);
      await new Promise((r) => setTimeout(r, 400)); // no byte since the greeting
      expect(fake.openStreams()).toBe(1); // still open, but silent: revocations may be lost on the way
      expect(stream.connected).toBe(false);
      fake.pushRevoked('key_X'); // a byte: the connection is alive
      await until(() => stream.connected);
    } finally {
      await stream.close();
    }
  });

  it('close() ends the stream and refuses further verifications', async () => {
    const v = verifier();
    await connected(v);
    expect(fake.openStreams()).toBe(1);
    await v.close();
    await until(() => fake.openStreams() === 0);
    await expect(v.verify(makeKey())).rejects.toMatchObject({ code: 'CLOSED' });
  });
});

describe('createVerifier: never "valid" when Breeze cannot be asked', () => {
  it('throws UNREACHABLE when nothing listens', async () => {
    const url = fake.url;
    await fake.close();
    const v = createVerifier({ server: url, apiKey: fake.verifierKey, events: false });
    verifiers.push(v);
    const err = await v.verify(makeKey()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BreezeVerifyError);
    expect(err).toMatchObject({ code: 'UNREACHABLE' });
    expect((err as Error).message).toContain(url);
    fake = await startFakeBreeze();
  });

  it('throws SERVER_ERROR on 5xx, BAD_RESPONSE on garbage, TIMEOUT on silence', async () => {
    const v = verifier({ events: false, timeoutMs: 300, negativeTtlMs: 0 });
    const key = makeKey();
    fake.override = { status: 502, body: '<html>bad gateway</html>', contentType: 'text/html' };
    await expect(v.verify(key)).rejects.toMatchObject({ code: 'SERVER_ERROR', status: 502 });
    for (const body of [
      '<html>ok</html>',
      '{"valid":"yes"}',
      '{"valid":true,"code":"VALID"}',
      JSON.stringify({ ...VALID('key_A'), key_id: 42 }),
      JSON.stringify({ ...VALID('key_A'), scopes: 'read' }),
      '{"valid":false,"code":"WHATEVER"}',
      '[]',
      'null',
    ]) {
      fake.override = { status: 200, body };
      const err = await v.verify(key).catch((e: unknown) => e);
      expect(err, body).toMatchObject({ code: 'BAD_RESPONSE' });
    }
    fake.override = { status: 200, body: `{"valid":false,"code":"NOT_FOUND","pad":"${'x'.repeat(70_000)}"}` };
    await expect(v.verify(key)).rejects.toMatchObject({ code: 'BAD_RESPONSE' });
    fake.override = null;
    fake.delayMs = 1000;
    await expect(v.verify(key)).rejects.toMatchObject({ code: 'TIMEOUT' });
  });

  it("says clearly when the verifier's own key is refused", async () => {
    const v = createVerifier({ server: fake.url, apiKey: makeKey(), events: false });
    verifiers.push(v);
    const err = (await v.verify(makeKey()).catch((e: unknown) => e)) as BreezeVerifyError;
    expect(err.code).toBe('UNAUTHORIZED');
    expect(err.message).toMatch(/verifier's own API key/);
  });

  it('never puts the verified key in an error message', async () => {
    const v = verifier({ events: false });
    const key = makeKey();
    fake.override = { status: 500, body: JSON.stringify({ error: { code: 'INTERNAL', message: key } }) };
    const err = (await v.verify(key).catch((e: unknown) => e)) as Error;
    expect(String(err.message)).not.toContain(key);
    expect(JSON.stringify(err)).not.toContain(key);
  });

  it('never follows a redirect: neither its own key nor the checked key goes where a 3xx points', async () => {
    // a "Breeze" that redirects everything to another origin, which records what reaches it
    const seen: string[] = [];
    const elsewhere = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString('utf8');
      });
      req.on('end', () => {
        seen.push(`${req.method} ${req.url} ${JSON.stringify(req.headers)} ${body}`);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(VALID('key_A')));
      });
    });
    elsewhere.listen(0, '127.0.0.1');
    await once(elsewhere, 'listening');
    const target = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}`;
    const redirector = createServer((req, res) => {
      req.resume();
      res.writeHead(307, { location: `${target}${req.url}` }).end();
    });
    redirector.listen(0, '127.0.0.1');
    await once(redirector, 'listening');
    const server = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}`;
    const errors: unknown[] = [];
    const v = createVerifier({ server, apiKey: fake.verifierKey, onError: (e) => errors.push(e) });
    verifiers.push(v);
    try {
      const key = makeKey();
      await expect(v.verify(key)).rejects.toMatchObject({ code: 'BAD_RESPONSE', status: 307 });
      await until(() => errors.length > 0); // the revocation stream met the redirect too
      expect(v.streamConnected).toBe(false);
      expect(seen).toEqual([]);
    } finally {
      for (const s of [elsewhere, redirector]) {
        s.closeAllConnections();
        s.close();
      }
    }
  });

  it('refuses bad options', () => {
    expect(() => createVerifier({ server: 'nope', apiKey: makeKey() })).toThrow(TypeError);
    expect(() => createVerifier({ server: fake.url, apiKey: 'secret' })).toThrow(/Breeze key/);
    expect(() => createVerifier({ server: 'ftp://x', apiKey: makeKey() })).toThrow(TypeError);
  });
});

describe('guards on a warm cache', () => {
  it('decide a key the cache knows at once, with one frozen caller shared by its requests', async () => {
    const key = makeKey();
    fake.answers.set(key, VALID('key_A', ['read', 'write']));
    const v = verifier();
    await connected(v);
    const g = prepareGuard({ verifier: v, scopes: ['read'] });
    // cold: the verifier has to ask, so the decision is a promise
    const cold = decideNow(key, g, 'req_1');
    expect(cold).toBeInstanceOf(Promise);
    expect(await cold).toMatchObject({ ok: true, auth: { key_id: 'key_A' } });
    // warm: decided synchronously, no request (the credential read as a guard reads it)
    const a = decideNow(nodeCredential({ 'x-api-key': ` ${key} ` }), g, 'req_2');
    const b = decideNow(key, g, 'req_3');
    expect(a).not.toBeInstanceOf(Promise);
    expect(a).toMatchObject({ ok: true, headers: { 'x-breeze-api-key-id': 'key_A' } });
    if (a instanceof Promise || b instanceof Promise || !a.ok || !b.ok) throw new Error('not decided');
    // each request its own caller (a handler may add to it), sharing the frozen user and scopes
    expect(b.auth).not.toBe(a.auth);
    (a.auth as unknown as Record<string, unknown>).tenant = 't1';
    expect(b.auth).not.toHaveProperty('tenant');
    expect(b.auth.scopes).toBe(a.auth.scopes);
    expect(Object.isFrozen(a.auth.user) && Object.isFrozen(a.auth.scopes)).toBe(true);
    expect(() => (a.auth.scopes as string[]).push('admin')).toThrow(TypeError);
    expect(b.auth.scopes).toEqual(['read', 'write']);
    // a scope the cached answer lacks: the server decides (and counts the refusal), then the cache
    fake.answers.set(key, { valid: false, code: 'INSUFFICIENT_SCOPE' });
    const admin = prepareGuard({ verifier: v, scopes: ['admin'] });
    expect(await decideNow(key, admin, 'req_4')).toMatchObject({ ok: false, status: 403 });
    const again = decideNow(key, admin, 'req_5');
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toMatchObject({ ok: false, status: 403 });
    expect(fake.verifyCalls).toHaveLength(2);
  });

  it('a Fastify guard on a warm cache still spends the rate-limit window: the fourth use of a limit of 3 is 429', async () => {
    const key = makeKey();
    fake.answers.set(key, VALID('key_A', ['read'], { ratelimit: { limit: 3, remaining: 2, reset_s: 60 } }));
    const v = verifier();
    await connected(v);
    const app = Fastify();
    await app.register(breezeFastify, { verifier: v });
    app.get('/x', async (req) => ({ key_id: req.breeze?.key_id }));
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++)
      statuses.push((await app.inject({ url: '/x', headers: { 'x-api-key': key } })).statusCode);
    expect(fake.verifyCalls).toHaveLength(1);
    // the server saw one use of the three: "valid, 1 left" is over the limit all the same
    fake.answers.set(key, VALID('key_A', ['read'], { ratelimit: { limit: 3, remaining: 1, reset_s: 59 } }));
    const fourth = await app.inject({ url: '/x', headers: { 'x-api-key': key } });
    statuses.push(fourth.statusCode);
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(Number(fourth.headers['retry-after'])).toBeGreaterThanOrEqual(59);
    // refused from the cache from now on
    expect((await app.inject({ url: '/x', headers: { 'x-api-key': key } })).statusCode).toBe(429);
    expect(fake.verifyCalls).toHaveLength(2);
    await app.close();
  });

  it('a wrapped or patched verifier is asked every time: the cache shortcut is only for an untouched one', async () => {
    const key = makeKey();
    fake.answers.set(key, VALID('key_A', ['read']));
    const v = verifier();
    await connected(v);
    expect(await v.verify(key)).toMatchObject({ valid: true }); // warm
    const denyA = (r: VerifyResult): VerifyResult =>
      r.valid && r.key_id === 'key_A' ? { valid: false, code: 'DISABLED' } : r;
    const copy = { ...v, verify: async (k: string, o?: VerifyOptions) => denyA(await v.verify(k, o)) };
    const inherited = Object.create(v) as Verifier;
    inherited.verify = async (k, o) => denyA(await v.verify(k, o));
    for (const wrapper of [copy, inherited]) {
      const app = Fastify();
      await app.register(breezeFastify, { verifier: wrapper });
      app.get('/x', async () => ({ ok: true }));
      for (let i = 0; i < 2; i++)
        expect((await app.inject({ url: '/x', headers: { 'x-api-key': key } })).statusCode).toBe(401);
      await app.close();
    }
    // the verifier itself, with its verify replaced
    const original = v.verify;
    v.verify = async (k, o) => denyA(await original(k, o));
    const app = Fastify();
    await app.register(breezeFastify, { verifier: v });
    app.get('/x', async () => ({ ok: true }));
    expect((await app.inject({ url: '/x', headers: { 'x-api-key': key } })).statusCode).toBe(401);
    v.verify = original;
    expect((await app.inject({ url: '/x', headers: { 'x-api-key': key } })).statusCode).toBe(200);
    await app.close();
    expect(fake.verifyCalls).toHaveLength(1);
  });

  it('every guard checks its scopes when it is set up, not at a request', async () => {
    const v = verifier({ events: false });
    const bad = ['read', 'Not A Scope'];
    expect(() => prepareGuard({ verifier: v, scopes: bad })).toThrow(/not a Breeze scope/);
    expect(() => breezeExpress({ verifier: v, scopes: bad })).toThrow(TypeError);
    expect(() => createFetchGuard({ verifier: v, scopes: bad })).toThrow(TypeError);
    expect(() => requireBreeze({ verifier: v, scopes: bad })).toThrow(TypeError);
    const app = Fastify();
    await expect(app.register(breezeFastify, { verifier: v, scopes: bad }).ready()).rejects.toThrow(
      /not a Breeze scope/,
    );
    const app2 = Fastify();
    await app2.register(breezeFastify, { verifier: v });
    expect(() => app2.get('/x', { config: { breeze: { scopes: ['BAD!'] } } }, async () => ({}))).toThrow(
      /not a Breeze scope/,
    );
    // a route declared before the plugin is guarded too, but checked at its first request: refused
    // in Breeze's shape, as when the guard cannot decide
    const app3 = Fastify();
    app3.get('/early', { config: { breeze: { scopes: ['BAD!'] } } }, async () => ({}));
    await app3.register(breezeFastify, { verifier: v });
    for (let i = 0; i < 2; i++) {
      const res = await app3.inject({ url: '/early', headers: { 'x-api-key': makeKey() } });
      expect(res.statusCode).toBe(503);
      expect(res.json().error).toMatchObject({
        code: 'UNAVAILABLE',
        request_id: res.headers['x-request-id'],
      });
    }
    // the exported decide() answers the same way
    expect(await decide(() => makeKey(), { verifier: v, scopes: bad })).toMatchObject({
      ok: false,
      status: 503,
    });
    await app.close();
    await app2.close();
    await app3.close();
    expect(fake.verifyCalls).toHaveLength(0);
  });
});
