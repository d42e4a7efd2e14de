import { describe, expect, it } from 'vitest';
import { BreezeVerifyError } from '../src/errors.js';
import { decide, extractCredential } from '../src/guard.js';
import { SseParser } from '../src/sse.js';
import type { KeyVerifier, VerifyResult } from '../src/types.js';

const headers = (h: Record<string, string>) => (name: string) => h[name];

describe('extractCredential: PLATFORM.md precedence', () => {
  it('takes xi-api-key, then x-api-key, then Bearer; a present higher header decides alone', () => {
    expect(
      extractCredential(headers({ 'xi-api-key': 'A', 'x-api-key': 'B', authorization: 'Bearer C' })),
    ).toBe('A');
    expect(extractCredential(headers({ 'x-api-key': 'B', authorization: 'Bearer C' }))).toBe('B');
    expect(extractCredential(headers({ authorization: 'Bearer C' }))).toBe('C');
    expect(extractCredential(headers({ authorization: 'bearer   C ' }))).toBe('C');
    // an empty higher header still decides (and is refused): no fallback to a lower one
    expect(extractCredential(headers({ 'xi-api-key': '', authorization: 'Bearer C' }))).toBe('');
    expect(extractCredential(headers({ 'x-api-key': '', authorization: 'Bearer C' }))).toBe('');
    expect(extractCredential(headers({ authorization: 'Basic Zm9vOmJhcg==' }))).toBeUndefined();
    expect(extractCredential(headers({ authorization: 'Bearer' }))).toBe('');
    expect(extractCredential(headers({}))).toBeUndefined();
  });
});

function fakeVerifier(
  answer: VerifyResult | Error,
): KeyVerifier & { calls: Array<{ key: string; scopes?: readonly string[] }> } {
  const calls: Array<{ key: string; scopes?: readonly string[] }> = [];
  return {
    calls,
    async verify(key, opts) {
      calls.push({ key, ...(opts?.scopes ? { scopes: opts.scopes } : {}) });
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
}

const VALID: VerifyResult = {
  valid: true,
  code: 'VALID',
  type: 'api_key',
  key_id: 'key_A',
  org_id: 'org_A',
  project_id: 'proj_A',
  user: { id: 'usr_A', email: 'a@example.com' },
  scopes: ['read'],
  expires_at: null,
};

describe('decide: refusals in Breeze error shape', () => {
  it('accepts a valid key with x-breeze-api-key-id and the caller', async () => {
    const v = fakeVerifier(VALID);
    const r = await decide(headers({ 'x-api-key': 'k1', authorization: 'Bearer k2' }), {
      verifier: v,
      scopes: ['read'],
    });
    expect(r).toEqual({
      ok: true,
      auth: {
        type: 'api_key',
        key_id: 'key_A',
        org_id: 'org_A',
        project_id: 'proj_A',
        user: { id: 'usr_A', email: 'a@example.com' },
        scopes: ['read'],
        expires_at: null,
      },
      headers: { 'x-breeze-api-key-id': 'key_A' },
    });
    expect(v.calls).toEqual([{ key: 'k1', scopes: ['read'] }]);
  });

  const cases: Array<[VerifyResult | Error, number, string, Record<string, string>?]> = [
    [{ valid: false, code: 'MALFORMED' }, 401, 'AUTH_REQUIRED'],
    [{ valid: false, code: 'NOT_FOUND' }, 401, 'AUTH_REQUIRED'],
    [{ valid: false, code: 'DISABLED' }, 401, 'AUTH_REQUIRED'],
    [{ valid: false, code: 'EXPIRED' }, 401, 'AUTH_REQUIRED'],
    [{ valid: false, code: 'INSUFFICIENT_SCOPE' }, 403, 'FORBIDDEN'],
    [{ valid: false, code: 'RATE_LIMITED', retry_after_s: 17 }, 429, 'RATE_LIMITED', { 'retry-after': '17' }],
    [{ valid: false, code: 'RATE_LIMITED' }, 429, 'RATE_LIMITED', { 'retry-after': '60' }],
    [new BreezeVerifyError('UNREACHABLE', 'down'), 503, 'UNAVAILABLE', { 'retry-after': '1' }],
  ];
  for (const [answer, status, code, extra] of cases) {
    const name =
      answer instanceof BreezeVerifyError ? answer.code : (answer as VerifyResult & { code: string }).code;
    it(`${name} -> ${status} ${code}`, async () => {
      const r = await decide(headers({ 'xi-api-key': 'k' }), {
        verifier: fakeVerifier(answer),
        requestId: 'req_1',
      });
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.status).toBe(status);
      expect(r.body).toEqual({
        error: {
          code,
          message: expect.any(String),
          statusCode: status,
          category: expect.any(String),
          request_id: 'req_1',
        },
      });
      expect(r.headers['x-breeze-api-key-id']).toBeUndefined();
      // API.md: the body's request_id equals the response's x-request-id
      expect(r.headers['x-request-id']).toBe('req_1');
      for (const [k, v] of Object.entries(extra ?? {})) expect(r.headers[k]).toBe(v);
      // RFC 9110: a 401 names the scheme, other refusals do not
      expect(r.headers['www-authenticate']).toBe(status === 401 ? 'Bearer realm="breeze"' : undefined);
    });
  }

  it('refuses a request without a credential without asking the verifier', async () => {
    const v = fakeVerifier(VALID);
    for (const h of [
      {},
      { 'xi-api-key': '' },
      { authorization: 'Basic abc' },
      { 'x-api-key': '  ' },
    ] as Array<Record<string, string>>) {
      const r = await decide(headers(h), { verifier: v });
      expect(r).toMatchObject({ ok: false, status: 401, body: { error: { code: 'AUTH_REQUIRED' } } });
      if (!r.ok) expect(r.headers['x-request-id']).toBe(r.body.error.request_id);
      if (!r.ok) expect(r.headers['www-authenticate']).toBe('Bearer realm="breeze"');
    }
    expect(v.calls).toHaveLength(0);
  });

  it('takes a JWT in Authorization: Bearer only: in a key header it is refused without asking (as the server does)', async () => {
    const jwt = `eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1c3JfQSJ9.${'s'.repeat(86)}`;
    const v = fakeVerifier(VALID);
    for (const h of [
      { 'xi-api-key': jwt },
      { 'x-api-key': jwt },
      // a present key header decides alone, even with a JWT in Bearer beside it
      { 'x-api-key': jwt, authorization: `Bearer ${jwt}` },
    ] as Array<Record<string, string>>) {
      const r = await decide(headers(h), { verifier: v });
      expect(r, JSON.stringify(Object.keys(h))).toMatchObject({
        ok: false,
        status: 401,
        body: { error: { code: 'AUTH_REQUIRED' } },
        headers: { 'www-authenticate': 'Bearer realm="breeze"' },
      });
    }
    expect(v.calls).toHaveLength(0);
    const bearer = await decide(headers({ authorization: `Bearer ${jwt}` }), { verifier: v });
    expect(bearer.ok).toBe(true);
    expect(v.calls).toEqual([{ key: jwt }]);
  });

  it('does not swallow programming errors of a custom verifier', async () => {
    await expect(
      decide(headers({ 'xi-api-key': 'k' }), { verifier: fakeVerifier(new RangeError('bug')) }),
    ).rejects.toThrow('bug');
  });
});

describe('SseParser', () => {
  it('parses events split anywhere, with CRLF, CR, comments, ids and multi-line data', () => {
    const stream =
      ': ping\r\n\r\nid: 1\r\nevent: key.revoked\r\ndata: {"key_id":"a"}\r\n\r\nretry: 2500\n' +
      'data: one\ndata: two\n\n:x\rid: 7\revent: key.revoked\rdata:{"key_id":"b"}\r\r';
    for (const size of [1, 2, 3, 7, stream.length]) {
      const events: Array<[string, string, string]> = [];
      let retry = 0;
      const p = new SseParser({
        onEvent: (e) => events.push([e.event, e.data, e.id]),
        onRetry: (ms) => (retry = ms),
      });
      for (let i = 0; i < stream.length; i += size) p.feed(stream.slice(i, i + size));
      expect(events, `chunk size ${size}`).toEqual([
        ['key.revoked', '{"key_id":"a"}', '1'],
        ['message', 'one\ntwo', '1'],
        ['key.revoked', '{"key_id":"b"}', '7'],
      ]);
      expect(retry).toBe(2500);
      expect(p.lastEventId).toBe('7');
    }
  });
});
