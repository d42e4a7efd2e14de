import { isWellFormedApiKey } from '../../core/api-key.js';
import type { Scope, UserInfo } from '../../core/types.js';
import { capScopes } from '../authz.js';
import type { ServerContext } from '../context.js';
import { cacheKeyOf } from '../plugins/auth.js';
import { isUsable, type KeyWithUser, scopesOf, statusOf } from '../store/keys.js';

export type VerifyCode =
  | 'VALID'
  | 'MALFORMED'
  | 'NOT_FOUND'
  | 'DISABLED'
  | 'EXPIRED'
  | 'INSUFFICIENT_SCOPE'
  | 'RATE_LIMITED';

export interface RateLimitInfo {
  limit: number;
  remaining: number;
  reset_s: number;
}

/** The answer of `POST /v1/keys/verify` (PLATFORM.md "Verifying keys in your own services"). */
export interface VerifyResult {
  valid: boolean;
  code: VerifyCode;
  key_id?: string;
  org_id?: string;
  project_id?: string;
  user?: UserInfo;
  scopes?: Scope[];
  expires_at?: string | null;
  /** null when the server runs without a per-key limit */
  ratelimit?: RateLimitInfo | null;
}

/** Negative answers are kept as briefly as positive ones, and never more of them than this. */
const MAX_MISSING = 10_000;

/**
 * Checks a key on behalf of a `verify` key of the same organization. A verification is a use of
 * the checked key: it spends that key's per-key rate limit, moves its `last_used_at` and counts in
 * its usage, exactly as a request made with it would. A key of another organization takes the
 * same path as one that does not exist and gets the same answer (nothing about it is touched), and
 * both are remembered for the cache TTL, so neither answers measurably faster than the other.
 */
export class VerificationService {
  /** cache key -> when the lookup found nothing */
  private readonly missing = new Map<string, number>();
  /** the VALID answer of a cached row, built once per row (scopes capped by the creator's role) */
  private readonly valid = new WeakMap<KeyWithUser, VerifyResult>();

  constructor(private readonly ctx: ServerContext) {}

  /**
   * The answer for `key`. A key in the verification cache is answered synchronously (no promise,
   * no store); anything else is looked up once (then cached, or remembered as missing).
   */
  verify(
    orgId: string,
    key: string,
    wanted: readonly Scope[] | undefined,
  ): VerifyResult | Promise<VerifyResult> {
    const nowMs = this.ctx.clock().getTime();
    // only a well-formed key is ever cached: a hit needs no checksum
    const cacheKey = cacheKeyOf(key);
    const cached = this.ctx.cache.get(cacheKey, nowMs);
    if (cached) return this.answer(orgId, cached, wanted, nowMs);
    if (!isWellFormedApiKey(key)) return { valid: false, code: 'MALFORMED' };
    // a key looked up moments ago and not found: the same answer as a key of another organization,
    // just as fast
    if (this.recentlyMissing(cacheKey, nowMs)) return { valid: false, code: 'NOT_FOUND' };
    return this.lookup(key, cacheKey, nowMs).then((found) =>
      this.answer(orgId, found, wanted, this.ctx.clock().getTime()),
    );
  }

  private answer(
    orgId: string,
    found: KeyWithUser | undefined,
    wanted: readonly Scope[] | undefined,
    nowMs: number,
  ): VerifyResult {
    // a key whose creator left the organization answers as if it did not exist (as it does to auth)
    if (!found || found.key.org_id !== orgId || !found.role || !found.key.project_id) {
      return { valid: false, code: 'NOT_FOUND' };
    }
    const { key: row } = found;
    const now = new Date(nowMs);
    if (!isUsable(row, now)) {
      return {
        valid: false,
        code: statusOf(row, now) === 'disabled' ? 'DISABLED' : 'EXPIRED',
        key_id: row.id,
      };
    }
    const { usage, keyRateLimit } = this.ctx;
    usage.used(row.id, row.last_used_at, nowMs);
    let ratelimit: RateLimitInfo | null = null;
    if (keyRateLimit) {
      const r = keyRateLimit(row.id);
      ratelimit = { limit: r.limit, remaining: r.remaining, reset_s: r.resetS };
      if (!r.allowed) {
        usage.rejected(row.id, nowMs);
        return { valid: false, code: 'RATE_LIMITED', key_id: row.id, ratelimit };
      }
    }
    let valid = this.valid.get(found);
    if (!valid) {
      valid = {
        valid: true,
        code: 'VALID',
        key_id: row.id,
        org_id: orgId,
        project_id: row.project_id ?? '',
        user: { id: row.user_id, email: found.email },
        scopes: capScopes(scopesOf(row), found.role),
        expires_at: row.expires_at,
        ratelimit: null,
      };
      this.valid.set(found, valid);
    }
    if (wanted) {
      const scopes = valid.scopes as Scope[];
      for (const s of wanted) {
        if (!scopes.includes(s)) {
          usage.rejected(row.id, nowMs);
          return { valid: false, code: 'INSUFFICIENT_SCOPE', key_id: row.id };
        }
      }
    }
    return ratelimit ? { ...valid, ratelimit } : valid;
  }

  /** True when a lookup of this key found nothing less than the cache TTL ago. */
  private recentlyMissing(cacheKey: string, nowMs: number): boolean {
    const missAt = this.missing.get(cacheKey);
    if (missAt === undefined) return false;
    if (nowMs - missAt < this.ctx.config.keyCacheTtlMs) return true;
    this.missing.delete(cacheKey);
    return false;
  }

  /** The verification record of `key` (not in the cache): one indexed read (then cached). */
  private async lookup(key: string, cacheKey: string, nowMs: number): Promise<KeyWithUser | undefined> {
    const { cache, store, hasher, config } = this.ctx;
    const readAt = cache.generation;
    const found = await store.keys.findByHash(hasher(key));
    if (found) {
      cache.set(cacheKey, found, nowMs, readAt);
    } else if (config.keyCacheTtlMs > 0) {
      if (this.missing.size >= MAX_MISSING) {
        const oldest = this.missing.keys().next().value;
        if (oldest !== undefined) this.missing.delete(oldest);
      }
      this.missing.set(cacheKey, nowMs);
    }
    return found;
  }
}
