import { describe, expect, it } from 'vitest';
import { redactBody, redactHeaders, redactUrl } from '../../src/client/redact.js';
import { generateApiKey } from '../../src/core/api-key.js';

describe('trace redaction', () => {
  const key = generateApiKey();
  it('hides secret headers whatever their case', () => {
    const h = redactHeaders({
      'XI-API-KEY': key,
      Authorization: `Bearer ${key}`,
      cookie: 's=1',
      'set-cookie': ['a=1'],
      accept: 'x',
    });
    expect(Object.values(h).join(' ')).not.toContain(key);
    expect(h.accept).toBe('x');
    expect(h.cookie).toBe('[redacted]');
  });
  it('hides api_key, secret, token, code and code_verifier fields at any depth, and stray keys in text', () => {
    const body = JSON.stringify({
      api_key: key,
      nested: { secret: 's', token: 't', code: 'C', code_verifier: 'v' },
      note: `was ${key}`,
    });
    const out = redactBody(body);
    for (const s of [key, '"s"', '"t"', '"C"', '"v"']) expect(out).not.toContain(s);
    expect(JSON.parse(out).nested.code).toBe('[redacted]');
    expect(redactBody(`plain ${key}`)).not.toContain(key);
    // issue 10 item 9: the loopback `state` is a secret too (it used to be shown)
    expect(redactUrl(`http://h/cb?code=abc&state=s`)).toBe(
      'http://h/cb?code=%5Bredacted%5D&state=%5Bredacted%5D',
    );
  });
  it('hides the loopback state of a CLI login request body', () => {
    const state = 'Zx8-state-value-0123456789';
    const out = redactBody(
      JSON.stringify({ code_challenge: 'c', redirect_uri: 'http://127.0.0.1:5/callback', state }),
    );
    expect(out).not.toContain(state);
    expect(JSON.parse(out)).toMatchObject({
      state: '[redacted]',
      redirect_uri: 'http://127.0.0.1:5/callback',
    });
  });
  it('keeps the error code of an API error readable, but not a code field beside it', () => {
    const out = JSON.parse(
      redactBody(JSON.stringify({ error: { code: 'NOT_FOUND', statusCode: 404, message: 'No such key.' } })),
    );
    expect(out.error.code).toBe('NOT_FOUND');
    expect(JSON.parse(redactBody(JSON.stringify({ code: 'ABCDEFGH', email: 'a@b.c' }))).code).toBe(
      '[redacted]',
    );
  });
});
