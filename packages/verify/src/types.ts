/** The scopes a Breeze key can hold (PLATFORM.md). Unknown future scopes are passed through as strings. */
export type BreezeScope = 'read' | 'write' | 'admin' | 'verify' | (string & {});

/** Codes of a refused verification (`valid: false`), as `POST /v1/keys/verify` answers them. */
export type InvalidCode =
  | 'MALFORMED'
  | 'NOT_FOUND'
  | 'DISABLED'
  | 'EXPIRED'
  | 'INSUFFICIENT_SCOPE'
  | 'RATE_LIMITED';

export interface RateLimitInfo {
  limit: number;
  remaining: number;
  /** seconds until the window resets */
  reset_s: number;
}

/** A valid key or token: PLATFORM.md's `200 {"valid": true, ...}`. */
export interface ValidResult {
  valid: true;
  code: 'VALID';
  /**
   * `api_key` for a Breeze key (checked by the server), `jwt` for an email-code JWT (signature checked
   * offline; by default only members of the verifier key's organization pass, see `jwtUsers`/`allowJwt`)
   */
  type: 'api_key' | 'jwt';
  /** null for a JWT */
  key_id: string | null;
  /** for a JWT: the verifier key's organization the user is a member of; null when `jwtUsers`/`allowJwt` decided */
  org_id: string | null;
  /** null for a JWT */
  project_id: string | null;
  /** for a JWT, `email` comes from the member list (null when `jwtUsers`/`allowJwt` decided) */
  user: { id: string; email: string | null };
  /** effective (role-capped) scopes */
  scopes: BreezeScope[];
  /** RFC 3339, or null */
  expires_at: string | null;
  /** the key's rate-limit window as the server last reported it (absent for JWTs) */
  ratelimit?: RateLimitInfo;
}

/** A refused key or token: `200 {"valid": false, "code": ...}`. */
export interface InvalidResult {
  valid: false;
  code: InvalidCode;
  /** for `RATE_LIMITED`: seconds until the key may be used again, when known */
  retry_after_s?: number;
}

export type VerifyResult = ValidResult | InvalidResult;

/**
 * What guards put on a request they accepted (`request.breeze` / `req.breeze`). `user` and `scopes`
 * are frozen: the requests one cached answer accepts share them.
 */
export interface BreezeAuth {
  type: 'api_key' | 'jwt';
  key_id: string | null;
  org_id: string | null;
  project_id: string | null;
  user: { readonly id: string; readonly email: string | null };
  scopes: readonly BreezeScope[];
  expires_at: string | null;
}

export interface VerifyOptions {
  /** every one of these must be among the key's effective scopes, else `INSUFFICIENT_SCOPE` */
  scopes?: readonly BreezeScope[];
}

/** The part of a verifier guards need (so tests and custom verifiers can stand in). */
export interface KeyVerifier {
  verify(key: string, opts?: VerifyOptions): Promise<VerifyResult>;
}
