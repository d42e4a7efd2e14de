import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  displayPrefix,
  generateApiKey,
  isWellFormedApiKey,
  crc32 as jsCrc32,
  KEY_LENGTH,
} from '../../src/core/api-key.js';
import { BASE62, encodeBase62 } from '../../src/core/base62.js';
import { parseDuration } from '../../src/core/duration.js';
import { createSecretHasher } from '../../src/core/hash.js';

/** Independent decoding of the checksum, straight from API.md's words. */
function decodeBase62(s: string): number {
  let n = 0;
  for (const ch of s) n = n * 62 + BASE62.indexOf(ch);
  return n;
}

describe('API key format', () => {
  it('is brz_ + 40 base62 + a 6-char base62 CRC32 of everything before it', () => {
    for (let i = 0; i < 200; i++) {
      const key = generateApiKey();
      expect(key).toMatch(/^brz_[0-9A-Za-z]{46}$/);
      expect(key.length).toBe(KEY_LENGTH);
      expect(decodeBase62(key.slice(44))).toBe(crc32(key.slice(0, 44)));
      expect(isWellFormedApiKey(key)).toBe(true);
    }
  });

  it('pads the checksum with leading zeros (most significant digit first)', () => {
    expect(encodeBase62(0, 6)).toBe('000000');
    expect(encodeBase62(61, 6)).toBe('00000z');
    expect(encodeBase62(62, 6)).toBe('000010');
    expect(encodeBase62(0xffffffff, 6)).toBe('4gfFC3');
  });

  it('rejects every single-character typo and wrong shapes', () => {
    const key = generateApiKey();
    for (let i = 4; i < key.length; i++) {
      const other = key[i] === 'a' ? 'b' : 'a';
      expect(isWellFormedApiKey(key.slice(0, i) + other + key.slice(i + 1))).toBe(false);
    }
    expect(isWellFormedApiKey(key.slice(0, -1))).toBe(false);
    expect(isWellFormedApiKey(`${key}0`)).toBe(false);
    expect(isWellFormedApiKey(key.replace('brz_', 'brx_'))).toBe(false);
    expect(isWellFormedApiKey('')).toBe(false);
  });

  it('draws the random part from all 62 symbols roughly evenly', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      for (const ch of generateApiKey().slice(4, 44)) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    }
    expect(counts.size).toBe(62);
    const expected = (2000 * 40) / 62;
    for (const c of counts.values()) expect(Math.abs(c - expected) / expected).toBeLessThan(0.15);
  });

  it('shows the first 12 characters as prefix', () => {
    const key = generateApiKey();
    expect(displayPrefix(key)).toBe(key.slice(0, 12));
  });
});

describe('secret hashing', () => {
  it('uses HMAC-SHA-256 with a pepper, SHA-256 without, and never returns the input', () => {
    const key = generateApiKey();
    const plain = createSecretHasher(null)(key);
    const peppered = createSecretHasher(Buffer.from('pepper'))(key);
    expect(plain).not.toBe(peppered);
    expect(plain).not.toContain(key);
    expect(createSecretHasher(Buffer.from('pepper'))(key)).toBe(peppered);
    expect(createSecretHasher(Buffer.from('other'))(key)).not.toBe(peppered);
  });
});

describe('durations', () => {
  it.each([
    ['0', 0],
    ['90s', 90],
    ['15m', 900],
    ['24h', 86400],
    ['30d', 2592000],
    ['00', 0],
  ])('%s is %d seconds', (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });
  it.each(['', '1w', '-5m', '1.5h', 'abc', '10 minutes'])('rejects %j', (text) => {
    expect(() => parseDuration(text)).toThrow(/Invalid duration/);
  });
  // issue 10: `--expires-in 30` silently meant 30 seconds
  it.each(['30', '45', ' 7 '])('refuses the bare number %j, naming the accepted forms', (text) => {
    expect(() => parseDuration(text)).toThrow(
      /no unit: write \d+s, \d+m, \d+h or \d+d \(accepted: 0, 90s, 15m, 24h or 30d\)/,
    );
  });
});

describe('crc32', () => {
  it('matches zlib on ASCII input, so keys minted before keep their checksums', () => {
    for (const s of [
      '',
      'a',
      'brz_',
      'The quick brown fox jumps over the lazy dog',
      `brz_${'Zz9'.repeat(14)}`,
    ]) {
      expect(jsCrc32(s)).toBe(crc32(s));
    }
    expect(jsCrc32('123456789')).toBe(0xcbf43926);
  });
});
