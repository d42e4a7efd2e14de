import { decideNow, type GuardOptions, type GuardResult, prepareGuard, readCredential } from './guard.js';
import { safeToken } from './http.js';
import type { BreezeAuth } from './types.js';

export type { GuardResult } from './guard.js';

/**
 * A guard for Fetch-API servers (Hono, Next.js route handlers, Bun.serve, Deno.serve):
 * `const guard = createFetchGuard({ verifier })`, then `const r = await guard(request)`;
 * `r.ok` ? use `r.auth` : `return refusalResponse(r)`.
 */
export function createFetchGuard(o: GuardOptions): (request: Request) => Promise<GuardResult> {
  if (!o?.verifier) throw new TypeError('createFetchGuard needs { verifier }');
  const g = prepareGuard(o);
  return async (request) => {
    const rid = safeToken(request.headers.get('x-request-id'));
    return decideNow(
      readCredential((name) => request.headers.get(name)),
      g,
      rid,
    );
  };
}

/** The `Response` to send for a refusal (Breeze's error shape, status, `Retry-After` on 429). */
export function refusalResponse(result: GuardResult & { ok: false }): Response {
  return new Response(JSON.stringify(result.body), { status: result.status, headers: result.headers });
}

/**
 * Wraps a Fetch-API handler: refused requests never reach it; accepted ones get the caller as second
 * argument and `x-breeze-api-key-id` on the response.
 */
export function withBreeze(
  o: GuardOptions,
  handler: (request: Request, auth: BreezeAuth) => Response | Promise<Response>,
): (request: Request) => Promise<Response> {
  const guard = createFetchGuard(o);
  return async (request) => {
    const r = await guard(request);
    if (!r.ok) return refusalResponse(r);
    const res = await handler(request, r.auth);
    const headers = new Headers(res.headers);
    for (const [k, v] of Object.entries(r.headers)) headers.set(k, v);
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
  };
}
