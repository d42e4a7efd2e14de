import { randomBytes } from 'node:crypto';
import { BreezeVerifyError } from './errors.js';
import type { BreezeAuth, BreezeScope, KeyVerifier, VerifyResult } from './types.js';

/** Options every guard takes. */
export interface GuardOptions {
  /** the verifier (from `createVerifier`) */
  verifier: KeyVerifier;
  /** scopes every request must carry (default none: any valid key) */
  scopes?: readonly BreezeScope[];
  /** also accept email-code JWTs in `Authorization: Bearer` (default true) */
  allowJwt?: boolean;
  /** told when Breeze could not be asked (the request got a 503); for your logs */
  onVerifyError?: (err: unknown) => void;
}

/** Breeze's error body (API.md). */
export interface BreezeErrorBody {
  error: { code: string; message: string; statusCode: number; category: string; request_id: string };
}

/** A guard's decision: accept (with who is calling) or refuse (with the answer to send). */
export type GuardResult =
  | { ok: true; auth: BreezeAuth; headers: Record<string, string> }
  | { ok: false; status: number; body: BreezeErrorBody; headers: Record<string, string> };

/** Header lookup, case-insensitive as HTTP headers are. */
export type HeaderGetter = (name: string) => string | undefined | null;

/**
 * The credential of a request, by PLATFORM.md's precedence: `xi-api-key`, then `x-api-key`, then
 * `Authorization: Bearer`. A present header of higher rank decides alone, even when it is empty or
 * wrong (it is never "fallen back" from). Undefined when none of the three is present.
 */
export function extractCredential(get: HeaderGetter): string | undefined {
  const xi = get('xi-api-key');
  if (xi !== undefined && xi !== null) return xi.trim();
  const x = get('x-api-key');
  if (x !== undefined && x !== null) return x.trim();
  const authz = get('authorization');
  if (authz === undefined || authz === null) return undefined;
  const m = /^\s*bearer(?:\s+(.*))?$/i.exec(authz);
  if (!m) return undefined; // another scheme (Basic, ...): not a Breeze credential
  return (m[1] ?? '').trim();
}

/** Reads a header from Node's `IncomingHttpHeaders` (arrays: the first value). */
export function nodeHeaderGetter(headers: Record<string, string | string[] | undefined>): HeaderGetter {
  return (name) => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
}

const MESSAGES = {
  missing: 'Missing API key: send it in the xi-api-key or x-api-key header, or as Authorization: Bearer.',
  invalid: 'Missing, malformed, deleted or disabled API key.',
  expired: 'The API key or token has expired.',
  scope: 'The API key lacks a scope this request needs',
  limited: 'Too many requests with this API key; retry after the time in Retry-After.',
  unavailable: 'Key verification is unavailable right now; retry shortly.',
} as const;

/** A request id for error bodies when the framework gives none. */
export function newRequestId(): string {
  return `req_${randomBytes(12).toString('base64url')}`;
}

function refusal(
  status: number,
  code: string,
  category: string,
  message: string,
  requestId: string,
  headers: Record<string, string> = {},
): GuardResult {
  return {
    ok: false,
    status,
    body: { error: { code, message, statusCode: status, category, request_id: requestId } },
    // API.md: every response carries x-request-id, and an error body's request_id equals it
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      'x-request-id': requestId,
      ...headers,
    },
  };
}

function toAuth(r: VerifyResult & { valid: true }): BreezeAuth {
  return {
    type: r.type,
    key_id: r.key_id,
    org_id: r.org_id,
    project_id: r.project_id,
    user: { id: r.user.id, email: r.user.email },
    scopes: [...r.scopes],
    expires_at: r.expires_at,
  };
}

/**
 * The decision every guard makes: read the credential, verify it, and map the answer to Breeze's
 * refusals (`401 AUTH_REQUIRED`, `403 FORBIDDEN`, `429 RATE_LIMITED` + `Retry-After`, and `503
 * UNAVAILABLE` when Breeze cannot be asked: a guard fails closed).
 */
export async function decide(
  get: HeaderGetter,
  o: GuardOptions & { requestId?: string; scopes?: readonly BreezeScope[] },
): Promise<GuardResult> {
  const requestId = o.requestId ?? newRequestId();
  const credential = extractCredential(get);
  if (credential === undefined || credential === '') {
    return refusal(401, 'AUTH_REQUIRED', 'AUTH', MESSAGES.missing, requestId, {
      'www-authenticate': 'Bearer realm="breeze"',
    });
  }
  if (o.allowJwt === false && !credential.startsWith('brz_')) {
    return refusal(401, 'AUTH_REQUIRED', 'AUTH', MESSAGES.invalid, requestId);
  }
  let result: VerifyResult;
  try {
    result = await o.verifier.verify(credential, o.scopes?.length ? { scopes: o.scopes } : {});
  } catch (err) {
    if (!(err instanceof BreezeVerifyError) && !(err instanceof TypeError)) throw err;
    o.onVerifyError?.(err);
    return refusal(503, 'UNAVAILABLE', 'SERVER', MESSAGES.unavailable, requestId, { 'retry-after': '1' });
  }
  if (result.valid) {
    const auth = toAuth(result);
    const headers: Record<string, string> = {};
    if (auth.key_id) headers['x-breeze-api-key-id'] = auth.key_id;
    return { ok: true, auth, headers };
  }
  switch (result.code) {
    case 'INSUFFICIENT_SCOPE':
      return refusal(
        403,
        'FORBIDDEN',
        'AUTH',
        o.scopes?.length ? `${MESSAGES.scope}: ${o.scopes.join(', ')}.` : `${MESSAGES.scope}.`,
        requestId,
      );
    case 'RATE_LIMITED':
      return refusal(429, 'RATE_LIMITED', 'RATE_LIMIT', MESSAGES.limited, requestId, {
        'retry-after': String(Math.max(1, result.retry_after_s ?? 60)),
      });
    case 'EXPIRED':
      return refusal(401, 'AUTH_REQUIRED', 'AUTH', MESSAGES.expired, requestId);
    default:
      return refusal(401, 'AUTH_REQUIRED', 'AUTH', MESSAGES.invalid, requestId);
  }
}
