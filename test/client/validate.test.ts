import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/client/errors.js';
import { checkKeyPage, isEmailLike } from '../../src/client/validate.js';

describe('isEmailLike', () => {
  it('takes addresses, in ASCII or not, and refuses controls, format characters and separators', () => {
    expect(isEmailLike('a@example.com')).toBe(true);
    expect(isEmailLike('jürgen@exämple.de')).toBe(true);
    expect(isEmailLike('a@b')).toBe(true);
    for (const bad of [
      'a\u0007@example.com', // BEL
      'a@example.com\u001b[2J', // ESC
      'a\u0085@example.com', // C1 (NEL)
      'ad\u202Emin@example.com', // bidi override
      'a\u200B@example.com', // zero-width space
      'a@example.com\u2028x', // line separator
      'a b@example.com',
      'no-at-sign',
      'two@@example.com',
      `${'a'.repeat(250)}@b.cd`,
    ]) {
      expect(isEmailLike(bad), JSON.stringify(bad)).toBe(false);
    }
    expect(isEmailLike(42)).toBe(false);
  });
});

describe('checkKeyPage', () => {
  it('refuses a next_cursor too long to send back (each is kept while paging)', () => {
    expect(
      checkKeyPage('GET /v1/api-keys', { data: [], next_cursor: 'c'.repeat(200) }).next_cursor,
    ).toHaveLength(200);
    expect(() => checkKeyPage('GET /v1/api-keys', { data: [], next_cursor: 'c'.repeat(1 << 20) })).toThrow(
      ApiError,
    );
    expect(() => checkKeyPage('GET /v1/api-keys', { data: [], next_cursor: 'c'.repeat(1 << 20) })).toThrow(
      /next_cursor is too long/,
    );
  });
});
