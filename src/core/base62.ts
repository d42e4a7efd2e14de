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

/**
 * Uniformly random string over `alphabet`, by rejection sampling so no symbol is favoured
 * (a plain `byte % n` would bias the first 256 % n symbols).
 */
export function randomString(length: number, alphabet: string): string {
  const n = alphabet.length;
  const limit = 256 - (256 % n);
  // node:crypto on use, not on import (the CLI's fast commands import this module's neighbours)
  const { randomBytes } = process.getBuiltinModule('node:crypto');
  let out = '';
  while (out.length < length) {
    const buf = randomBytes(Math.ceil((length - out.length) * 1.3) + 8);
    for (const b of buf) {
      if (b < limit) {
        out += alphabet[b % n];
        if (out.length === length) break;
      }
    }
  }
  return out;
}
