import { describe, expect, it } from 'vitest';
import { ulid, ulidTimeOf } from '../../src/core/ids.js';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

describe('ulid', () => {
  it('is 10 characters of time then 16 random ones, Crockford base32', () => {
    const t = Date.UTC(2026, 11, 1, 7, 30);
    const id = ulid(t);
    expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    // the time part is the millisecond time, most significant character first
    let n = 0;
    for (const c of id.slice(0, 10)) n = n * 32 + CROCKFORD.indexOf(c);
    expect(n).toBe(t);
    expect(ulid(t + 1).slice(0, 10) > id.slice(0, 10)).toBe(true);
  });

  it('has 80 random bits: every character of the random part takes all 32 values, ids never repeat', () => {
    const seen = new Set<string>();
    const symbols = Array.from({ length: 16 }, () => new Set<string>());
    // more ids than one refill of the random pool holds
    for (let i = 0; i < 5000; i++) {
      const id = ulid(0);
      seen.add(id);
      for (let j = 0; j < 16; j++) symbols[j]?.add(id[10 + j] as string);
    }
    expect(seen.size).toBe(5000);
    for (const s of symbols) expect(s.size).toBe(32);
  });

  it('ulidTimeOf reads back the time of a prefixed id, and nothing from what is not one', () => {
    const t = Date.UTC(2026, 0, 2, 3, 4, 5, 6);
    expect(ulidTimeOf(`key_${ulid(t)}`, 'key_')).toBe(t);
    expect(ulidTimeOf(`evt_${ulid(0)}`, 'evt_')).toBe(0);
    for (const bad of [
      `evt_${ulid(t)}`,
      `key_${ulid(t)}x`,
      `key_${ulid(t).slice(1)}`,
      'key_imported',
      `key_${'U'.repeat(26)}`,
    ]) {
      expect(ulidTimeOf(bad, 'key_'), bad).toBeUndefined();
    }
  });
});
