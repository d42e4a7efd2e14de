/**
 * Breeze's key format (API.md): `brz_` + 40 base62 characters + 6 base62 characters encoding the
 * CRC-32 of everything before them. Checked locally so typos and garbage never cost a request.
 * (A copy of the contract, not an import: this package imports nothing from the server.)
 */
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const KEY_SHAPE = /^brz_[0-9A-Za-z]{46}$/;
/** A key's length: `brz_` and 46 characters. */
export const KEY_LENGTH = 50;

let table: Uint32Array | undefined;

function crc32(ascii: string): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < ascii.length; i++) crc = table[(crc ^ ascii.charCodeAt(i)) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function base62(value: number, width: number): string {
  let out = '';
  let v = value;
  while (v > 0) {
    out = BASE62[v % 62] + out;
    v = Math.floor(v / 62);
  }
  return out.padStart(width, '0');
}

/** True when `value` has the shape of a Breeze API key and its checksum matches. */
export function isWellFormedKey(value: string): boolean {
  if (value.length !== KEY_LENGTH || !KEY_SHAPE.test(value)) return false;
  return value.slice(44) === base62(crc32(value.slice(0, 44)), 6);
}

const JWT_SHAPE = /^[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}$/;

/** True when `value` looks like a compact JWS (three base64url parts); the signature is checked elsewhere. */
export function looksLikeJwt(value: string): boolean {
  return value.length <= 8192 && value.startsWith('eyJ') && JWT_SHAPE.test(value);
}
