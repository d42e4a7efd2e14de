import { randomBytes } from 'node:crypto';
import { BreezeVerifyError } from './errors.js';
import { looksLikeJwt } from './key-format.js';
import type { BreezeAuth, BreezeScope, KeyVerifier, ValidResult, VerifyResult } from './types.js';
import { cachedAnswer, normalizeScopes } from './verifier.js';

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
  return pickCredential(get('xi-api-key'), get('x-api-key'), get('authorization'));
}

/**
 * What a guard reads from a request: the credential, or NOT_A_KEY for a JWT in a key header
 * (`xi-api-key`, `x-api-key`). A JWT goes in `Authorization: Bearer` only (API.md), as the server
 * takes it: a guard refuses one in a key header without asking (a custom verifier included).
 */
export const NOT_A_KEY: unique symbol = Symbol('a JWT in a key header');
export type Credential = string | typeof NOT_A_KEY | undefined;

/** extractCredential over the three headers' values. */
function pickCredential(
  xi: string | undefined | null,
  x: string | undefined | null,
  authz: string | undefined | null,
): string | undefined {
  if (xi !== undefined && xi !== null) return xi.trim();
  if (x !== undefined && x !== null) return x.trim();
  if (authz === undefined || authz === null) return undefined;
  const m = /^\s*bearer(?:\s+(.*))?$/i.exec(authz);
  if (!m) return undefined; // another scheme (Basic, ...): not a Breeze credential
  return (m[1] ?? '').trim();
}

/** pickCredential as a guard reads it: a JWT in a key header is NOT_A_KEY. */
function guardCredential(
  xi: string | undefined | null,
  x: string | undefined | null,
  authz: string | undefined | null,
): Credential {
  const value = pickCredential(xi, x, authz);
  if (value === undefined || value.startsWith('brz_') || !looksLikeJwt(value)) return value;
  return xi !== undefined && xi !== null ? NOT_A_KEY : x !== undefined && x !== null ? NOT_A_KEY : value;
}

/** A guard's credential from a header getter (the Fetch API's `Headers`, ...). */
export function readCredential(get: HeaderGetter): Credential {
  return guardCredential(get('xi-api-key'), get('x-api-key'), get('authorization'));
}

type NodeHeaders = Record<string, string | string[] | undefined>;
const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

/** A guard's credential from Node's `IncomingHttpHeaders` (no getter to build per request). */
export function nodeCredential(headers: NodeHeaders): Credential {
  return guardCredential(
    first(headers['xi-api-key']),
    first(headers['x-api-key']),
    first(headers.authorization),
  );
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
      // RFC 9110 §15.5.2: every 401 names the scheme (as the Breeze server's do)
      ...(status === 401 ? { 'www-authenticate': 'Bearer realm="breeze"' } : {}),
      ...headers,
    },
  };
}

/**
 * What an answer's acceptances share: an answer from the verifier's cache accepts every request it
 * serves, so its caller's user and scopes are copied (and frozen) once, not for each request.
 */
const shared = new WeakMap<VerifyResult, BreezeAuth>();

function accept(r: ValidResult): GuardResult {
  let base = shared.get(r);
  if (base === undefined) {
    base = {
      type: r.type,
      key_id: r.key_id,
      org_id: r.org_id,
      project_id: r.project_id,
      user: Object.freeze({ id: r.user.id, email: r.user.email }),
      scopes: Object.freeze([...r.scopes]),
      expires_at: r.expires_at,
    };
    shared.set(r, base);
  }
  // each request its own caller object and headers (a handler may add to them), the parts shared
  const headers: Record<string, string> = r.key_id ? { 'x-breeze-api-key-id': r.key_id } : {};
  return { ok: true, auth: { ...base }, headers };
}

/** A guard's settings, checked once: its scopes in the verifier's order (see prepareGuard). */
export interface PreparedGuard {
  o: GuardOptions;
  /** sorted, without repeats, frozen; undefined when the guard asks for none */
  scopes: readonly string[] | undefined;
}

/**
 * Checks a guard's scopes and puts them in the verifier's order once, so a request does not (a
 * TypeError names a scope that is not one). `extra`: a route's own scopes on top of the guard's.
 */
export function prepareGuard(o: GuardOptions, extra?: readonly BreezeScope[]): PreparedGuard {
  const all = [...(o.scopes ?? []), ...(extra ?? [])];
  return { o, scopes: all.length > 0 ? Object.freeze(normalizeScopes(all)) : undefined };
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
  let g: PreparedGuard;
  try {
    g = prepareGuard(o);
  } catch (err) {
    // a scope that is not one: refused as when Breeze cannot be asked (the guard cannot decide)
    return unavailable(err, o, o.requestId);
  }
  return decideNow(readCredential(get), g, o.requestId);
}

/** `503 UNAVAILABLE`: the guard could not decide (Breeze unreachable, or the guard misconfigured). */
export function unavailable(
  err: unknown,
  o: GuardOptions,
  requestId: string | undefined,
  log?: { error(obj: object, msg: string): void },
): GuardResult {
  log?.error({ err }, 'Breeze key verification unavailable');
  o.onVerifyError?.(err);
  return refusal(503, 'UNAVAILABLE', 'SERVER', MESSAGES.unavailable, requestId ?? newRequestId(), {
    'retry-after': '1',
  });
}

/**
 * decide for a credential already read: synchronous when the verifier's cache answers (no promise,
 * no turn of the microtask queue: the warm path of every request), else a promise. `requestId`:
 * for a refusal's body and `x-request-id` (a fresh one when not given); `log`: told, with `onVerifyError`,
 * when Breeze could not be asked.
 */
export function decideNow(
  credential: Credential,
  g: PreparedGuard,
  requestId: string | undefined,
  log?: { error(obj: object, msg: string): void },
): GuardResult | Promise<GuardResult> {
  if (credential === undefined || credential === '') {
    return refusal(401, 'AUTH_REQUIRED', 'AUTH', MESSAGES.missing, requestId ?? newRequestId(), {
      'www-authenticate': 'Bearer realm="breeze"',
    });
  }
  const { o, scopes } = g;
  if (credential === NOT_A_KEY || (o.allowJwt === false && !credential.startsWith('brz_'))) {
    return refusal(401, 'AUTH_REQUIRED', 'AUTH', MESSAGES.invalid, requestId ?? newRequestId());
  }
  const cached = cachedAnswer(o.verifier, credential, scopes ?? NO_SCOPES);
  if (cached) return judge(cached, scopes, requestId);
  // a native promise whatever a custom verifier returns or throws (guards tell the two paths apart
  // by `instanceof Promise`)
  return new Promise<VerifyResult>((resolve) =>
    resolve(o.verifier.verify(credential, scopes ? { scopes } : {})),
  ).then(
    (result) => judge(result, scopes, requestId),
    (err: unknown) => {
      if (!(err instanceof BreezeVerifyError) && !(err instanceof TypeError)) throw err;
      return unavailable(err, o, requestId, log);
    },
  );
}

const NO_SCOPES: readonly string[] = Object.freeze([]);

/** An answer as the guard's decision. */
function judge(result: VerifyResult, scopes: readonly string[] | undefined, requestId?: string): GuardResult {
  if (result.valid) return accept(result);
  const id = requestId ?? newRequestId();
  switch (result.code) {
    case 'INSUFFICIENT_SCOPE':
      return refusal(
        403,
        'FORBIDDEN',
        'AUTH',
        scopes?.length ? `${MESSAGES.scope}: ${scopes.join(', ')}.` : `${MESSAGES.scope}.`,
        id,
      );
    case 'RATE_LIMITED':
      return refusal(429, 'RATE_LIMITED', 'RATE_LIMIT', MESSAGES.limited, id, {
        'retry-after': String(Math.max(1, result.retry_after_s ?? 60)),
      });
    case 'EXPIRED':
      return refusal(401, 'AUTH_REQUIRED', 'AUTH', MESSAGES.expired, id);
    default:
      return refusal(401, 'AUTH_REQUIRED', 'AUTH', MESSAGES.invalid, id);
  }
}
