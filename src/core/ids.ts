import { randomBytes } from 'node:crypto';

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
export const newRequestId = (): string => `req_${randomBytes(12).toString('base64url')}`;
/** An opaque identifier with `bytes` of entropy, base64url. */
export const randomToken = (bytes = 32): string => randomBytes(bytes).toString('base64url');
export const newOrgId = (now?: number): string => `org_${ulid(now)}`;
export const newProjectId = (now?: number): string => `proj_${ulid(now)}`;
export const newInvitationId = (now?: number): string => `inv_${ulid(now)}`;
