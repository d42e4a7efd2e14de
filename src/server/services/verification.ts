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

  constructor(private readonly ctx: ServerContext) {}

  async verify(orgId: string, key: string, wanted: readonly Scope[] | undefined): Promise<VerifyResult> {
    if (!isWellFormedApiKey(key)) return { valid: false, code: 'MALFORMED' };
    const found = await this.lookup(key);
    const now = this.ctx.clock();
    // a key whose creator left the organization answers as if it did not exist (as it does to auth)
    if (!found || found.key.org_id !== orgId || !found.role || !found.key.project_id) {
      return { valid: false, code: 'NOT_FOUND' };
    }
    const { key: row } = found;
    if (!isUsable(row, now)) {
      return {
        valid: false,
        code: statusOf(row, now) === 'disabled' ? 'DISABLED' : 'EXPIRED',
        key_id: row.id,
      };
    }
    const nowMs = now.getTime();
    const { usage, keyRateLimit } = this.ctx;
    usage.used(row.id, row.last_used_at, nowMs);
    let ratelimit: RateLimitInfo | null = null;
    if (keyRateLimit) {
      const r = await keyRateLimit(row.id);
      ratelimit = { limit: r.limit, remaining: r.remaining, reset_s: r.resetS };
      if (!r.allowed) {
        usage.rejected(row.id, nowMs);
        return { valid: false, code: 'RATE_LIMITED', key_id: row.id, ratelimit };
      }
    }
    const scopes = capScopes(scopesOf(row), found.role);
    if (wanted?.some((s) => !scopes.includes(s))) {
      usage.rejected(row.id, nowMs);
      return { valid: false, code: 'INSUFFICIENT_SCOPE', key_id: row.id };
    }
    return {
      valid: true,
      code: 'VALID',
      key_id: row.id,
      org_id: orgId,
      project_id: row.project_id ?? '',
      user: { id: row.user_id, email: found.email },
      scopes,
      expires_at: row.expires_at,
      ratelimit,
    };
  }

  /** The verification record of `key` from the cache, else one indexed read (then cached). */
  private async lookup(key: string): Promise<KeyWithUser | undefined> {
    const { cache, store, hasher, clock, config } = this.ctx;
    const cacheKey = cacheKeyOf(key);
    const nowMs = clock().getTime();
    const cached = cache.get(cacheKey, nowMs);
    if (cached) return cached;
    const missAt = this.missing.get(cacheKey);
    if (missAt !== undefined) {
      if (nowMs - missAt < config.keyCacheTtlMs) return undefined;
      this.missing.delete(cacheKey);
    }
    const found = await store.keys.findByHash(hasher(key));
    if (found) {
      cache.set(cacheKey, found, nowMs);
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
