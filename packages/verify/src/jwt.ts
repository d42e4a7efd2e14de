import { createRemoteJWKSet, customFetch, errors, jwtVerify } from 'jose';
import { BreezeVerifyError, type BreezeVerifyErrorCode } from './errors.js';
import { networkError, readLimited } from './http.js';
import type { VerifyResult } from './types.js';

/** What a valid email-code JWT grants (API.md: everything its user can reach, as `read, write, admin`). */
export const JWT_SCOPES = ['read', 'write', 'admin'] as const;
const AUDIENCE = 'breeze';
const CLOCK_TOLERANCE_S = 60;
const COOLDOWN_MS = 1000;

/** The claims of a verified email-code JWT, as `allowJwt` sees them (signature, `iss`, `aud`, `exp` already checked). */
export interface JwtClaims {
  /** the Breeze user id (`usr_…`) */
  sub: string;
  iss: string;
  iat: number;
  exp: number;
  [claim: string]: unknown;
}

/** Decides whether a verified JWT's user may in (see `VerifierOptions.allowJwt`). */
export type JwtAllow = (claims: JwtClaims) => boolean | Promise<boolean>;

/** Who a verified JWT's user is to the verifier: null when they may not in (`NOT_FOUND`). */
export interface JwtIdentity {
  /** the organization the user was found a member of (null: the application decided, no organization) */
  org_id: string | null;
  email: string | null;
  /** the user's scopes there (role-capped) */
  scopes: readonly string[];
}
export type JwtResolve = (claims: JwtClaims) => Promise<JwtIdentity | null>;

/** What the application's `allowJwt`/`jwtUsers` admit: the user, with everything a JWT grants, in no organization. */
export function resolveByAllow(allow: JwtAllow): JwtResolve {
  return async (claims) =>
    (await allow(claims)) === true ? { org_id: null, email: null, scopes: JWT_SCOPES } : null;
}

export interface JwtChecker {
  verify(token: string, scopes: readonly string[]): Promise<VerifyResult>;
}

/**
 * Offline checks of the email-code flow's JWTs: Ed25519 signature against the server's JWKS (fetched
 * once, refetched when a token names an unknown `kid`, i.e. after a key rollover), `iss`, `aud`,
 * `exp`. Only an unreachable JWKS throws; a bad token is an ordinary refusal.
 */
export function createJwtChecker(o: {
  jwksUrl: string;
  issuer: string;
  fetch: typeof fetch;
  timeoutMs: number;
  /**
   * Whether the token's user is accepted, and as whom: a valid JWT proves a Breeze user (anyone can
   * sign up), not a member of the caller's organization. A refused one answers `NOT_FOUND`, like a
   * key of another organization.
   */
  resolve: JwtResolve;
}): JwtChecker {
  // jose's cooldown counts from the last SUCCESSFUL read: while the JWKS fails (5xx, garbage,
  // unreachable) every token, forged ones included, would refetch it. A failed read therefore holds
  // further reads back for COOLDOWN_MS (they fail at once, as the last one did).
  let failedAt = Number.NEGATIVE_INFINITY;
  let failedCode: BreezeVerifyErrorCode = 'UNREACHABLE';
  const failed = (code: BreezeVerifyErrorCode) => {
    failedAt = performance.now();
    failedCode = code;
  };
  const boundedFetch = async (url: string, init: RequestInit): Promise<Response> => {
    if (performance.now() - failedAt < COOLDOWN_MS) {
      throw new BreezeVerifyError(
        failedCode,
        `The JWKS at ${o.jwksUrl} could not be read a moment ago; it is asked again in a second.`,
      );
    }
    try {
      const res = await o.fetch(url, init);
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => {});
        failed(res.status >= 500 ? 'SERVER_ERROR' : 'BAD_RESPONSE');
        return new Response(null, { status: res.status, headers: res.headers });
      }
      // a key set is a few hundred bytes: never read an endless or huge answer whole
      const text = await readLimited(res);
      let ok = false;
      try {
        ok = Array.isArray((JSON.parse(text) as { keys?: unknown })?.keys);
      } catch {}
      if (!ok) failed('BAD_RESPONSE');
      return new Response(text, { status: 200, headers: res.headers });
    } catch (err) {
      failed(err instanceof BreezeVerifyError ? err.code : networkError(err, o.jwksUrl, o.timeoutMs).code);
      throw err;
    }
  };
  const jwks = createRemoteJWKSet(new URL(o.jwksUrl), {
    timeoutDuration: o.timeoutMs,
    // an unknown kid refetches at most this often, so made-up kids cannot flood the server
    cooldownDuration: COOLDOWN_MS,
    cacheMaxAge: 10 * 60_000,
    [customFetch]: (url, init) => boundedFetch(url, init),
  });
  return {
    async verify(token, scopes) {
      const check = () =>
        jwtVerify(token, jwks, {
          issuer: o.issuer,
          audience: AUDIENCE,
          algorithms: ['Ed25519', 'EdDSA'],
          requiredClaims: ['sub', 'iat', 'exp'],
          clockTolerance: CLOCK_TOLERANCE_S,
        });
      let payload: Awaited<ReturnType<typeof check>>['payload'];
      try {
        let verified: Awaited<ReturnType<typeof check>>;
        try {
          verified = await check();
        } catch (err) {
          // an unknown kid right after the key set was read (a rollover in that second): wait out the
          // refetch cooldown and look once more, rather than refuse a token the server just issued
          // (until jose's own clock says it is over: a timer may fire a little early)
          if (!(err instanceof errors.JWKSNoMatchingKey) || !jwks.coolingDown) throw err;
          await new Promise((r) => setTimeout(r, COOLDOWN_MS));
          for (let i = 0; i < 20 && jwks.coolingDown; i++) await new Promise((r) => setTimeout(r, 10));
          verified = await check();
        }
        payload = verified.payload;
      } catch (err) {
        return mapJoseError(err, o.jwksUrl, o.timeoutMs);
      }
      const sub = payload.sub;
      if (typeof sub !== 'string' || sub.length === 0 || sub.length > 128)
        return { valid: false, code: 'MALFORMED' };
      // outside the try above: an error of the application's own check is its own, not the JWKS's
      const who = await o.resolve({ ...payload, sub } as JwtClaims);
      if (!who) return refusal('NOT_FOUND');
      if (!scopes.every((s) => who.scopes.includes(s))) {
        return { valid: false, code: 'INSUFFICIENT_SCOPE' };
      }
      return {
        valid: true,
        code: 'VALID',
        type: 'jwt',
        key_id: null,
        org_id: who.org_id,
        project_id: null,
        user: { id: sub, email: who.email },
        scopes: [...who.scopes],
        expires_at: new Date((payload.exp as number) * 1000).toISOString(),
      };
    },
  };
}

/** A bad token is a refusal; a JWKS that cannot be read throws (never "valid"). */
function mapJoseError(err: unknown, jwksUrl: string, timeoutMs: number): VerifyResult {
  // ours (an answer too large, a read held back after a failure): already says what went wrong
  if (err instanceof BreezeVerifyError) throw err;
  if (err instanceof errors.JWTExpired) return refusal('EXPIRED');
  if (
    err instanceof errors.JWSSignatureVerificationFailed ||
    err instanceof errors.JWKSNoMatchingKey ||
    err instanceof errors.JWKSMultipleMatchingKeys ||
    err instanceof errors.JWTClaimValidationFailed
  ) {
    return refusal('NOT_FOUND');
  }
  if (
    err instanceof errors.JWSInvalid ||
    err instanceof errors.JWTInvalid ||
    err instanceof errors.JOSEAlgNotAllowed ||
    err instanceof errors.JOSENotSupported
  ) {
    return refusal('MALFORMED');
  }
  if (err instanceof errors.JWKSTimeout) {
    throw new BreezeVerifyError('TIMEOUT', `The JWKS at ${jwksUrl} did not answer within ${timeoutMs} ms.`, {
      cause: err,
    });
  }
  if (err instanceof errors.JWKSInvalid) {
    throw new BreezeVerifyError('BAD_RESPONSE', `The JWKS at ${jwksUrl} is not a valid key set.`, {
      cause: err,
    });
  }
  if (err instanceof errors.JOSEError) {
    throw new BreezeVerifyError('SERVER_ERROR', `The JWKS at ${jwksUrl} could not be read.`, { cause: err });
  }
  throw new BreezeVerifyError('UNREACHABLE', `The JWKS at ${jwksUrl} cannot be reached.`, { cause: err });
}

const refusal = (code: 'EXPIRED' | 'NOT_FOUND' | 'MALFORMED'): VerifyResult => ({ valid: false, code });
