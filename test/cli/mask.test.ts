import { describe, expect, it } from 'vitest';
import { base64Core, Masker, maskedForms } from '../../src/cli/run/mask.js';

const KEY = 'brz_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ';
const secrets = [{ name: 'BREEZE_API_KEY', value: KEY }];

/** Feeds `text` to a fresh masker in the given pieces and returns everything it let through. */
function through(pieces: Array<string | Buffer>, list = secrets): string {
  const m = new Masker(list);
  const out: Buffer[] = [];
  for (const p of pieces) out.push(m.push(Buffer.from(p)));
  out.push(m.end());
  return Buffer.concat(out).toString('utf8');
}

describe('Masker', () => {
  it('replaces the plain value, also split at every position', () => {
    const text = `token=${KEY}\n`;
    expect(through([text])).toBe('token=[BREEZE_API_KEY]\n');
    for (let i = 1; i < text.length; i++) {
      expect(through([text.slice(0, i), text.slice(i)])).toBe('token=[BREEZE_API_KEY]\n');
    }
    // byte by byte
    expect(through([...text])).toBe('token=[BREEZE_API_KEY]\n');
  });

  it('replaces base64 and base64url at every alignment inside a longer stream, and percent-encoded forms', () => {
    for (const prefix of ['', 'u', 'us', 'user:', 'ab:', 'a:']) {
      const b64 = Buffer.from(`${prefix}${KEY}~~~`).toString('base64');
      const out = through([`Authorization: Basic ${b64}\n`]);
      expect(out, prefix).toContain('[BREEZE_API_KEY]');
      // what is left of the encoded value says less than one byte of it
      const left = out.replace('Authorization: Basic ', '').replace('\n', '');
      expect(left.replace('[BREEZE_API_KEY]', '').length).toBeLessThanOrEqual(
        b64.length - base64Core(Buffer.from(KEY), 0, false).length,
      );
      const url = Buffer.from(`${prefix}${KEY}?>`).toString('base64url');
      expect(through([url.slice(0, 7), url.slice(7)]), prefix).toContain('[BREEZE_API_KEY]');
    }
    const odd = 'p@ss w/rd+ü&secret';
    const list = [{ name: 'TOKEN', value: odd }];
    expect(through([`q=${encodeURIComponent(odd)}&x=1`], list)).toBe('q=[TOKEN]&x=1');
    expect(through([`q=${encodeURIComponent(odd).toLowerCase()}`], list)).toBe('q=[TOKEN]');
    expect(through([`q=${encodeURIComponent(odd).replace(/%20/g, '+')}`], list)).toBe('q=[TOKEN]');
    expect(through([Buffer.from(odd).toString('base64')], list)).toContain('[TOKEN]');
  });

  it('replaces a value encoded on its own whole, its last characters and padding included', () => {
    // 50, 49 and 48 bytes: two, one and no padding characters
    for (const value of [KEY, KEY.slice(0, 49), KEY.slice(0, 48)]) {
      const list = [{ name: 'BREEZE_API_KEY', value }];
      const b64 = Buffer.from(value).toString('base64');
      expect(through([`${b64}\n`], list), b64).toBe('[BREEZE_API_KEY]\n');
      expect(through([`x=${b64.replace(/=+$/, '')};`], list)).toBe('x=[BREEZE_API_KEY];');
      const url = Buffer.from(value).toString('base64url');
      expect(through([url.slice(0, 9), `${url.slice(9)}\n`], list)).toBe('[BREEZE_API_KEY]\n');
    }
  });

  it('holds back only a possible prefix of a secret: a progress bar passes at once', () => {
    const m = new Masker(secrets);
    expect(m.push(Buffer.from('\r[====      ] 40%')).toString()).toBe('\r[====      ] 40%');
    // "b" and "br" could start the key: held back, the rest shown
    expect(m.push(Buffer.from('\r[=====     ] 50% br')).toString()).toBe('\r[=====     ] 50% ');
    expect(m.push(Buffer.from('z_ is not a key\n')).toString()).toBe('brz_ is not a key\n');
    expect(m.end().toString()).toBe('');
  });

  it('never lets a key through whatever the chunking (random splits)', () => {
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const b64 = Buffer.from(`x:${KEY}`).toString('base64');
    const text = `a${KEY}b ${b64} c${encodeURIComponent(KEY)}d\n`.repeat(3);
    for (let round = 0; round < 200; round++) {
      const pieces: string[] = [];
      let i = 0;
      while (i < text.length) {
        const n = 1 + Math.floor(rnd() * 20);
        pieces.push(text.slice(i, i + n));
        i += n;
      }
      const out = through(pieces);
      expect(out).not.toContain(KEY);
      expect(out).not.toContain(base64Core(Buffer.from(KEY), 2, false));
      expect(out.split('[BREEZE_API_KEY]').length - 1).toBe(9);
    }
  });

  it('ignores values too short to mask and has the expected forms', () => {
    expect(through(['abc def'], [{ name: 'X', value: 'abc' }])).toBe('abc def');
    expect(maskedForms(KEY)).toContain(KEY);
    expect(maskedForms(KEY).length).toBeGreaterThanOrEqual(4);
  });
});
