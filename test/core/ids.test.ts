import { describe, expect, it } from 'vitest';
import { monotonicUlids, ulid, ulidTimeOf, ulidTimePrefix } from '../../src/core/ids.js';

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

describe('monotonicUlids', () => {
  it('sorts in minting order within a millisecond and when the clock steps back; fresh random in a new millisecond', () => {
    const next = monotonicUlids();
    const t = Date.UTC(2026, 11, 2, 3, 4, 5);
    const ids = [next(t), next(t), next(t), next(t - 5), next(t), next(t + 1), next(t + 1)];
    for (const id of ids) expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    // within the millisecond (and after the step back) each is the previous one plus one
    const random = (id: string) =>
      [...id.slice(10)].reduce((n, c) => n * 32n + BigInt(CROCKFORD.indexOf(c)), 0n);
    for (let i = 1; i < 5; i++) {
      expect(ids[i]?.slice(0, 10)).toBe(ulidTimePrefix(t));
      expect(random(ids[i] ?? '') - random(ids[i - 1] ?? '')).toBe(1n);
    }
    expect(ulidTimeOf(`evt_${ids[5]}`, 'evt_')).toBe(t + 1);
    // a new millisecond starts from fresh random bits, not from the last id + 1
    expect(random(ids[5] ?? '') - random(ids[4] ?? '')).not.toBe(1n);
  });

  it('a step back of more than a second starts again from the clock (fresh random, its own time)', () => {
    const next = monotonicUlids();
    const t = Date.UTC(2026, 11, 2, 3, 4, 5);
    next(t + 60_000);
    const after = next(t);
    expect(ulidTimeOf(`evt_${after}`, 'evt_')).toBe(t);
    expect(ulidTimeOf(`evt_${next(t)}`, 'evt_')).toBe(t);
  });

  it('5,000 in one millisecond (the increment carried across characters) stay sorted and distinct', () => {
    const next = monotonicUlids();
    const t = 1_000;
    const seen: string[] = [];
    for (let i = 0; i < 5000; i++) seen.push(next(t));
    expect([...seen].sort()).toEqual(seen);
    expect(new Set(seen).size).toBe(seen.length);
  });
});
