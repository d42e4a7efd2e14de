import { BASE62, encodeBase62, randomString } from './base62.js';

export const KEY_PREFIX = 'brz_';
const RANDOM_LENGTH = 40; // 40 * log2(62) ≈ 238 bits
const CHECKSUM_LENGTH = 6;
export const KEY_LENGTH = KEY_PREFIX.length + RANDOM_LENGTH + CHECKSUM_LENGTH;
/** `prefix` shown in listings: the first 12 characters, never enough to use the key. */
export const DISPLAY_PREFIX_LENGTH = 12;

const KEY_SHAPE = new RegExp(`^${KEY_PREFIX}[0-9A-Za-z]{${RANDOM_LENGTH + CHECKSUM_LENGTH}}$`);

function checksumOf(body: string): string {
  // node:zlib on use: `breeze env` needs only displayPrefix and must start fast
  return encodeBase62(process.getBuiltinModule('node:zlib').crc32(body), CHECKSUM_LENGTH);
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
