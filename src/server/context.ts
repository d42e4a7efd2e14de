import type { SecretHasher } from '../core/hash.js';
import type { AuthContext } from './auth-context.js';
import type { ServerConfig } from './config.js';
import type { KeyService } from './key-service.js';
import type { Mailer } from './mail/mailer.js';
import type { AuditService } from './services/audit.js';
import type { UsageTracker } from './services/usage.js';
import type { Store } from './store/index.js';
import type { VerificationCache } from './verification-cache.js';

/** Who is calling (its own module, so that services can name it without importing this one). */
export type { AuthContext } from './auth-context.js';

/** What routes share; decorated on the Fastify instance as `app.breeze`. */
export interface ServerContext {
  store: Store;
  config: ServerConfig;
  mailer: Mailer;
  hasher: SecretHasher;
  cache: VerificationCache;
  keys: KeyService;
  clock: () => Date;
  /** the audit log: `record` inside the transaction of each change */
  audit: AuditService;
  /** per-key request counters and `last_used_at` (services/usage.ts) */
  usage: UsageTracker;
  /**
   * Counts one use of `keyId` against its per-key rate limit (the same budget its own requests
   * spend); absent when the limit is off.
   */
  keyRateLimit?: (keyId: string) => KeyRateLimitResult;
}

export interface KeyRateLimitResult {
  allowed: boolean;
  limit: number;
  remaining: number;
  resetS: number;
}

export type AuthMode = 'required' | 'optional' | 'none';

declare module 'fastify' {
  interface FastifyInstance {
    breeze: ServerContext;
  }
  interface FastifyRequest {
    auth: AuthContext | null;
  }
  interface FastifyContextConfig {
    /** default 'none'; API routes say 'required' */
    auth?: AuthMode;
    /** false: the caller's per-key rate limit does not apply (the route spends another key's) */
    keyRateLimit?: boolean;
  }
}

/** True when the caller may manage keys other than its own: an admin key, a JWT or a browser session. */
export function canManageKeys(auth: AuthContext): boolean {
  return auth.type !== 'api_key' || auth.scopes.includes('admin');
}
