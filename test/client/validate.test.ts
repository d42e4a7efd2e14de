import { describe, expect, it } from 'vitest';
import { isEmailLike } from '../../src/client/validate.js';

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
