import { BASE62, encodeBase62, randomString } from './base62.js';

export const KEY_PREFIX = 'brz_';
const RANDOM_LENGTH = 40; // 40 * log2(62) ≈ 238 bits
const CHECKSUM_LENGTH = 6;
export const KEY_LENGTH = KEY_PREFIX.length + RANDOM_LENGTH + CHECKSUM_LENGTH;
/** `prefix` shown in listings: the first 12 characters, never enough to use the key. */
export const DISPLAY_PREFIX_LENGTH = 12;

const KEY_SHAPE = new RegExp(`^${KEY_PREFIX}[0-9A-Za-z]{${RANDOM_LENGTH + CHECKSUM_LENGTH}}$`);

let crcTable: Uint32Array | undefined;

/**
 * CRC-32 (IEEE, as zlib's) of an ASCII string. In JavaScript rather than node:zlib: `breeze token` and
 * `breeze env` check the key they print, and loading zlib would cost them more than the whole check.
 */
export function crc32(ascii: string): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < ascii.length; i++) crc = crcTable[(crc ^ ascii.charCodeAt(i)) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** The 6 base62 characters of the CRC-32 of `body` (only ever ASCII: `brz_` and base62). */
function checksumOf(body: string): string {
  return encodeBase62(crc32(body), CHECKSUM_LENGTH);
}

/** Mints a new plaintext API key: `brz_` + 40 random base62 + 6-char base62 CRC32 of what precedes it. */
export function generateApiKey(): string {
  const body = KEY_PREFIX + randomString(RANDOM_LENGTH, BASE62);
  return body + checksumOf(body);
}

/**
 * True when `value` has the key's shape and its checksum matches. Cheap and local: callers use it to
 * refuse typos and garbage before touching the database.
 */
export function isWellFormedApiKey(value: string): boolean {
  if (value.length !== KEY_LENGTH || !KEY_SHAPE.test(value)) return false;
  const body = value.slice(0, KEY_LENGTH - CHECKSUM_LENGTH);
  return value.slice(KEY_LENGTH - CHECKSUM_LENGTH) === checksumOf(body);
}

export function displayPrefix(key: string): string {
  return key.slice(0, DISPLAY_PREFIX_LENGTH);
}
