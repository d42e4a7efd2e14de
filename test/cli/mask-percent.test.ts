/**
 * README "Masking": `breeze run --mask` hides every injected secret "and its base64, base64url and
 * percent-encoded forms". For a Breeze key (base62 and `_`, all unreserved) encodeURIComponent is
 * the identity, so the e2e "query=" assertion in run-mask.test.ts is the plain-key case again and
 * cannot fail on its own. The percent-encoded forms that differ from the key are these: `_`
 * escaped (encoders that keep only letters and digits) is masked; every byte escaped is not.
 */
import { describe, expect, it } from 'vitest';
import { Masker } from '../../src/cli/run/mask.js';

const KEY = 'brz_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ';

function through(text: string): string {
  const m = new Masker([{ name: 'BREEZE_API_KEY', value: KEY }]);
  return Buffer.concat([m.push(Buffer.from(text)), m.end()]).toString('utf8');
}

const everyByte = (s: string, hex: (b: number) => string) =>
  [...Buffer.from(s)].map((b) => `%${hex(b)}`).join('');

describe('percent-encoded forms of a Breeze key', () => {
  it('encodeURIComponent of a key is the key itself (so the existing test proves nothing more)', () => {
    expect(encodeURIComponent(KEY)).toBe(KEY);
  });

  it("every byte escaped is not masked: its forms would start with %, and a progress bar's trailing % would wait", () => {
    const upper = everyByte(KEY, (b) => b.toString(16).toUpperCase().padStart(2, '0'));
    expect(through(`q=${upper}\n`)).toBe(`q=${upper}\n`);
    const m = new Masker([{ name: 'BREEZE_API_KEY', value: KEY }]);
    expect(m.push(Buffer.from('\r[====      ] 40%')).toString()).toBe('\r[====      ] 40%');
  });

  it('the underscore escaped alone (brz%5F…, as encoders that keep only letters and digits write it) is masked', () => {
    expect(through(`q=${KEY.replace('_', '%5F')}\n`)).toBe('q=[BREEZE_API_KEY]\n');
    expect(through(`q=${KEY.replace('_', '%5f')}\n`)).toBe('q=[BREEZE_API_KEY]\n');
  });
});
