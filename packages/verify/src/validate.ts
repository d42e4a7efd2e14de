import { BreezeVerifyError } from './errors.js';
import type { InvalidCode, RateLimitInfo, VerifyResult } from './types.js';

/**
 * The server's answer is untrusted input: anything that is not exactly PLATFORM.md's verify response
 * is refused (BAD_RESPONSE), so a broken proxy or a wrong URL can never be mistaken for "valid".
 */
const INVALID_CODES: ReadonlySet<string> = new Set<InvalidCode>([
  'MALFORMED',
  'NOT_FOUND',
  'DISABLED',
  'EXPIRED',
  'INSUFFICIENT_SCOPE',
  'RATE_LIMITED',
]);

const ID = /^[A-Za-z0-9_-]{1,128}$/;
const SCOPE = /^[a-z][a-z0-9_:.-]{0,63}$/;

function bad(what: string, status: number, requestId?: string): BreezeVerifyError {
  return new BreezeVerifyError('BAD_RESPONSE', `The Breeze server's verify answer is not valid: ${what}.`, {
    status,
    ...(requestId ? { requestId } : {}),
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isTimestamp(v: unknown): v is string {
  return typeof v === 'string' && v.length <= 64 && !Number.isNaN(Date.parse(v));
}

function nonNegative(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

/** Parses and checks the JSON text of a `200` answer of `POST /v1/keys/verify`. */
export function parseVerifyAnswer(text: string, status: number, requestId?: string): VerifyResult {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw bad('not JSON', status, requestId);
  }
  if (!isObject(body)) throw bad('not an object', status, requestId);
  if (body.valid === false) {
    if (typeof body.code !== 'string' || !INVALID_CODES.has(body.code))
      throw bad('unknown code', status, requestId);
    const out: VerifyResult = { valid: false, code: body.code as InvalidCode };
    const retry = body.retry_after_s ?? (isObject(body.ratelimit) ? body.ratelimit.reset_s : undefined);
    if (body.code === 'RATE_LIMITED' && nonNegative(retry)) out.retry_after_s = Math.ceil(retry);
    return out;
  }
  if (body.valid !== true || body.code !== 'VALID')
    throw bad('"valid" and "code" disagree', status, requestId);
  const { key_id, org_id, project_id, user, scopes, expires_at, ratelimit } = body;
  if (typeof key_id !== 'string' || !ID.test(key_id)) throw bad('key_id', status, requestId);
  if (typeof org_id !== 'string' || !ID.test(org_id)) throw bad('org_id', status, requestId);
  if (typeof project_id !== 'string' || !ID.test(project_id)) throw bad('project_id', status, requestId);
  if (!isObject(user) || typeof user.id !== 'string' || !ID.test(user.id))
    throw bad('user.id', status, requestId);
  if (typeof user.email !== 'string' || user.email.length > 320 || !user.email.includes('@')) {
    throw bad('user.email', status, requestId);
  }
  if (
    !Array.isArray(scopes) ||
    scopes.length > 32 ||
    !scopes.every((s) => typeof s === 'string' && SCOPE.test(s))
  ) {
    throw bad('scopes', status, requestId);
  }
  if (expires_at !== null && expires_at !== undefined && !isTimestamp(expires_at)) {
    throw bad('expires_at', status, requestId);
  }
  const result: VerifyResult = {
    valid: true,
    code: 'VALID',
    type: 'api_key',
    key_id,
    org_id,
    project_id,
    user: { id: user.id, email: user.email },
    scopes: [...(scopes as string[])],
    expires_at: (expires_at as string | null | undefined) ?? null,
  };
  if (ratelimit !== undefined && ratelimit !== null) {
    if (
      !isObject(ratelimit) ||
      !nonNegative(ratelimit.limit) ||
      !nonNegative(ratelimit.remaining) ||
      !nonNegative(ratelimit.reset_s)
    ) {
      throw bad('ratelimit', status, requestId);
    }
    result.ratelimit = {
      limit: ratelimit.limit,
      remaining: ratelimit.remaining,
      reset_s: ratelimit.reset_s,
    } satisfies RateLimitInfo;
  }
  return result;
}
