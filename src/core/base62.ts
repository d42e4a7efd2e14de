export const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Encodes a non-negative integer in base62, most significant digit first, left-padded with '0'. */
export function encodeBase62(value: number, width: number): string {
  let out = '';
  let v = value;
  while (v > 0) {
    out = BASE62[v % 62] + out;
    v = Math.floor(v / 62);
  }
  return out.padStart(width, '0');
}

// Random bytes come from a pool refilled 4 KiB at a time: a randomBytes call costs about as much
// for 4 KiB as for the 60 bytes a key needs (some 7 µs here), and minting a key is hot in servers.
// Bytes are zeroed once used, so the pool never holds what went into a key already handed out.
const POOL_SIZE = 4096;
let pool: Buffer | undefined;
let poolOffset = POOL_SIZE;

function randomByte(): number {
  if (pool === undefined || poolOffset === POOL_SIZE) {
    // node:crypto on use, not on import (the CLI's fast commands import this module's neighbours)
    const { randomFillSync } = process.getBuiltinModule('node:crypto');
    pool ??= Buffer.alloc(POOL_SIZE);
    randomFillSync(pool);
    poolOffset = 0;
  }
  const b = pool[poolOffset] as number;
  pool[poolOffset++] = 0;
  return b;
}

/**
 * Uniformly random string over `alphabet`, by rejection sampling so no symbol is favoured
 * (a plain `byte % n` would bias the first 256 % n symbols).
 */
export function randomString(length: number, alphabet: string): string {
  const n = alphabet.length;
  const limit = 256 - (256 % n);
  let out = '';
  while (out.length < length) {
    const b = randomByte();
    if (b < limit) out += alphabet[b % n];
  }
  return out;
}
