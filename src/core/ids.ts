import { randomBytes, randomFillSync } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** `n` (below 2^40) as 8 Crockford base32 characters, most significant first. */
function base32x8(n: number): string {
  let s = '';
  for (let i = 0; i < 8; i++) {
    s = CROCKFORD[n % 32] + s;
    n = Math.floor(n / 32);
  }
  return s;
}

// The random part of ULIDs comes from a pool refilled 4 KiB at a time (as request ids do below):
// the same 80 random bits, without a randomBytes call (and its buffer) and BigInt arithmetic per id
// (every key, audit event and delivery mints one).
const ULID_RANDOM_BYTES = 10;
const ulidPool = Buffer.allocUnsafe(ULID_RANDOM_BYTES * 409);
let ulidPoolOffset = ulidPool.length;

/**
 * A ULID (48-bit millisecond time + 80 random bits, Crockford base32): sortable by creation time,
 * so "newest first" is an index scan on the id.
 */
export function ulid(now: number = Date.now()): string {
  const time = ulidTimePrefix(now);
  if (ulidPoolOffset + ULID_RANDOM_BYTES > ulidPool.length) {
    randomFillSync(ulidPool);
    ulidPoolOffset = 0;
  }
  // 80 bits -> 16 base32 chars: two 40-bit halves of 8 characters each
  const high = ulidPool.readUIntBE(ulidPoolOffset, 5);
  const low = ulidPool.readUIntBE(ulidPoolOffset + 5, 5);
  ulidPoolOffset += ULID_RANDOM_BYTES;
  return time + base32x8(high) + base32x8(low);
}

const MONOTONIC_STEP_BACK_MS = 1000;

/**
 * A source of ULIDs that sort in the order they were minted (ULID's "monotonic" mode): in the
 * millisecond of the last one, or when the clock steps back by up to a second, the next is the last
 * plus one (the last one's time, its 80 random bits incremented); in a later millisecond, or after a
 * step back of more than a second (a clock that ran ahead, corrected), a fresh random ULID of the
 * clock's time, so ids do not stay pinned to a wrong time. For logs read newest first by id, where
 * two events of one millisecond must keep their order.
 */
export function monotonicUlids(): (now?: number) => string {
  let lastMs = -1;
  let high = 0;
  let low = 0;
  const startAt = (ms: number): string => {
    const fresh = ulid(ms);
    lastMs = ms;
    high = decode40(fresh, 10);
    low = decode40(fresh, 18);
    return fresh;
  };
  return (now: number = Date.now()) => {
    if (now > lastMs || now < lastMs - MONOTONIC_STEP_BACK_MS) return startAt(now);
    low += 1;
    if (low === 2 ** 40) {
      low = 0;
      high += 1;
      // 2^80 ids in one millisecond cannot happen; move to the next one rather than wrap
      if (high === 2 ** 40) return startAt(lastMs + 1);
    }
    return ulidTimePrefix(lastMs) + base32x8(high) + base32x8(low);
  };
}

/** 8 Crockford base32 characters of `s` from `at` as a number (below 2^40). */
function decode40(s: string, at: number): number {
  let n = 0;
  for (let i = at; i < at + 8; i++) n = n * 32 + CROCKFORD.indexOf(s[i] as string);
  return n;
}

/**
 * The first 10 characters of every ULID minted at millisecond `ms` (its time part): ids sort by
 * time, so `prefix + ulidTimePrefix(ms)` is a bound for "minted at or after `ms`".
 */
export function ulidTimePrefix(ms: number): string {
  let time = '';
  let t = Math.max(0, ms);
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return time;
}

/**
 * The millisecond time an id made by `ulid` was minted at: `prefix` + a ULID (`key_01J…`).
 * Undefined when `id` is not one.
 */
export function ulidTimeOf(id: string, prefix: string): number | undefined {
  if (id.length !== prefix.length + 26 || !id.startsWith(prefix)) return undefined;
  let t = 0;
  for (let i = prefix.length; i < id.length; i++) {
    const v = CROCKFORD.indexOf(id[i] as string);
    if (v === -1) return undefined;
    if (i < prefix.length + 10) t = t * 32 + v;
  }
  return t;
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
