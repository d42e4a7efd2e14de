import { isWellFormedApiKey, KEY_LENGTH, KEY_PREFIX } from './api-key.js';

/** `brz_` as bytes: what a scan looks for with Buffer#indexOf (memchr speed) before anything else. */
const NEEDLE = Buffer.from(KEY_PREFIX, 'latin1');
const BODY_LENGTH = KEY_LENGTH - KEY_PREFIX.length;

/** 1 for the bytes of base62 (`0-9A-Za-z`), the alphabet of everything after `brz_`. */
const BASE62_BYTE = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c);
  BASE62_BYTE[c] = /^[0-9A-Za-z]$/.test(ch) ? 1 : 0;
}

/** A checksum-valid key found in a buffer. */
export interface KeyHit {
  /** the whole key (callers print only its display prefix) */
  key: string;
  /** byte offset of `brz_` */
  offset: number;
  /** 1-based line of the offset */
  line: number;
}

/**
 * Every Breeze key in `buf` with the exact grammar of core/api-key.ts — `brz_`, 46 base62
 * characters, not followed by another base62 character — AND a matching CRC-32 checksum, so a
 * look-alike (wrong length, wrong alphabet, wrong checksum) is never reported. The buffer is searched
 * for `brz_` with Buffer#indexOf; line numbers are counted only up to a hit.
 */
export function findKeysInBuffer(buf: Buffer, end = buf.length): KeyHit[] {
  const hits: KeyHit[] = [];
  let at = buf.indexOf(NEEDLE, 0);
  let line = 1;
  let counted = 0;
  while (at !== -1 && at < end) {
    const stop = at + KEY_LENGTH;
    let shaped = stop <= end && (stop === end || BASE62_BYTE[buf[stop] as number] === 0);
    for (let i = at + KEY_PREFIX.length; shaped && i < stop; i++) {
      if (BASE62_BYTE[buf[i] as number] === 0) shaped = false;
    }
    if (shaped) {
      const key = buf.toString('latin1', at, stop);
      if (isWellFormedApiKey(key)) {
        for (let nl = buf.indexOf(10, counted); nl !== -1 && nl < at; nl = buf.indexOf(10, nl + 1)) line++;
        counted = at;
        hits.push({ key, offset: at, line });
        at = buf.indexOf(NEEDLE, stop);
        continue;
      }
    }
    at = buf.indexOf(NEEDLE, at + 1);
  }
  return hits;
}

/** The regular expression of a key's shape (no checksum: a regex cannot compute one). */
export const KEY_SHAPE_SOURCE = `${KEY_PREFIX}[0-9A-Za-z]{${BODY_LENGTH}}`;
