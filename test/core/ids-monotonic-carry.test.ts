import { beforeEach, describe, expect, it, vi } from 'vitest';

/**
 * monotonicUlids' increment across its two 40-bit halves, and past the last of its 2^80 values,
 * which real random bits never reach in a test: the random source is replaced here by fixed bytes.
 */
const fill = vi.hoisted(() => ({ bytes: [0xff] as number[] }));
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return {
    ...real,
    randomFillSync: <T extends NodeJS.ArrayBufferView>(buf: T): T => {
      const view = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
      for (let i = 0; i < view.length; i++) view[i] = fill.bytes[i % fill.bytes.length] as number;
      return buf;
    },
  };
});

const { ulidTimeOf } = await import('../../src/core/ids.js');

describe('monotonicUlids at the ends of its range', () => {
  beforeEach(() => {
    vi.resetModules();
  });

  it('carries from the low 40 bits into the high ones', async () => {
    // the first id's random part: high half 0, low half all ones
    fill.bytes = [0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff];
    const { monotonicUlids: fresh } = await import('../../src/core/ids.js');
    const next = fresh();
    const a = next(1_000);
    const b = next(1_000);
    expect(a.slice(10)).toBe('00000000ZZZZZZZZ');
    expect(b.slice(10)).toBe('0000000100000000');
    expect(b > a).toBe(true);
  });

  it('past the last value of a millisecond, moves to the next millisecond instead of wrapping', async () => {
    fill.bytes = [0xff];
    const { monotonicUlids: fresh } = await import('../../src/core/ids.js');
    const next = fresh();
    const ids = [next(1_000), next(1_000), next(1_000)];
    expect(ids[0]?.slice(10)).toBe('ZZZZZZZZZZZZZZZZ');
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(3);
    expect(ids.map((id) => ulidTimeOf(`evt_${id}`, 'evt_'))).toEqual([1_000, 1_001, 1_002]);
  });
});
