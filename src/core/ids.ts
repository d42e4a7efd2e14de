import { randomBytes, randomFillSync } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * A ULID (48-bit millisecond time + 80 random bits, Crockford base32): sortable by creation time,
 * so "newest first" is an index scan on the id.
 */
export function ulid(now: number = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomBytes(10);
  let rand = '';
  // 80 bits -> 16 base32 chars, 5 bits at a time
  let acc = 0n;
  for (const b of bytes) acc = (acc << 8n) | BigInt(b);
  for (let i = 0; i < 16; i++) {
    rand = CROCKFORD[Number(acc & 31n)] + rand;
    acc >>= 5n;
  }
  return time + rand;
}

export const newKeyId = (now?: number): string => `key_${ulid(now)}`;
export const newUserId = (now?: number): string => `usr_${ulid(now)}`;

// Request ids come from a pool of random bytes refilled 4 KiB at a time: the same 96 random bits an
// id always had, without a randomBytes call (and its buffer) on every request.
const REQUEST_ID_BYTES = 12;
const pool = Buffer.allocUnsafe(REQUEST_ID_BYTES * 341);
let poolOffset = pool.length;

/** `req_` + 96 random bits, base64url (16 characters). */
export function newRequestId(): string {
  if (poolOffset + REQUEST_ID_BYTES > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const id = pool.toString('base64url', poolOffset, poolOffset + REQUEST_ID_BYTES);
  poolOffset += REQUEST_ID_BYTES;
  return `req_${id}`;
}
/** An opaque identifier with `bytes` of entropy, base64url. */
export const randomToken = (bytes = 32): string => randomBytes(bytes).toString('base64url');
export const newOrgId = (now?: number): string => `org_${ulid(now)}`;
export const newProjectId = (now?: number): string => `proj_${ulid(now)}`;
export const newInvitationId = (now?: number): string => `inv_${ulid(now)}`;
