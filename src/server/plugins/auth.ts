import { hash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { isWellFormedApiKey } from '../../core/api-key.js';
import { HttpError } from '../../core/errors.js';
import { capScopes } from '../authz.js';
import type { AuthContext } from '../context.js';
import { isUsable, type KeyWithUser, scopesOf } from '../store/keys.js';

/** Authenticators that later features plug in: JWT bearer tokens and browser sessions. */
export interface Authenticators {
  /** Verifies a non-API-key Bearer token; null when it is not a valid token. */
  jwt?: (token: string, request: FastifyRequest) => Promise<AuthContext | null>;
  /** Reads the browser session cookie; null when there is none or it is invalid. */
  session?: (request: FastifyRequest) => Promise<AuthContext | null>;
}

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

export function unauthenticated(message = 'Missing, malformed, deleted or disabled API key.'): HttpError {
  return new HttpError('AUTH_REQUIRED', message);
}

/**
 * The verification cache's key for an API key: a plain SHA-256 (one call, ~5x cheaper than the
 * peppered HMAC the database is searched by). Never the plaintext itself.
 */
export function cacheKeyOf(apiKey: string): string {
  return hash('sha256', apiKey, 'base64url');
}

/**
 * Authenticates requests to routes whose `config.auth` is 'required' or 'optional' (the hook is
 * attached to those routes only). `xi-api-key` wins over `x-api-key`, which wins over
 * `Authorization: Bearer` (a present header of higher rank decides alone); a key whose
 * checksum fails is refused before any lookup; verified keys are cached (see VerificationCache) and
 * a cached key is accepted synchronously, without a promise; `last_used_at` is written at most once
 * a minute per key, off the request path.
 */
export function registerAuth(app: FastifyInstance, authenticators: Authenticators): void {
  const { store, cache, hasher, clock } = app.breeze;
  const { usage } = app.breeze;
  store.onKeyChange((keyId) => cache.invalidateKey(keyId));

  // the caller of a cached row, built once per row rather than once per request
  const contexts = new WeakMap<KeyWithUser, AuthContext>();

  function accept(found: KeyWithUser, now: Date, reply: FastifyReply): AuthContext {
    const { key, email, role } = found;
    // a key whose creator left its organization (role null) answers as if it did not exist
    if (!isUsable(key, now) || !role || !key.org_id || !key.project_id) throw unauthenticated();
    reply.header('x-breeze-api-key-id', key.id);
    usage.used(key.id, key.last_used_at, now.getTime());
    let auth = contexts.get(found);
    if (!auth) {
      // effective scopes: the key's own, capped by its creator's current role (a new row on a change)
      const keyScopes = scopesOf(key);
      auth = {
        type: 'api_key',
        user: { id: key.user_id, email },
        scopes: capScopes(keyScopes, role),
        keyId: key.id,
        keyScopes,
        org: { id: key.org_id, name: found.org_name ?? '', role },
        project: { id: key.project_id, name: found.project_name ?? '' },
      };
      contexts.set(found, auth);
    }
    return auth;
  }

  /** A cached (so already verified) key: its caller, synchronously; undefined when not cached. */
  function verifyCached(value: string, reply: FastifyReply): AuthContext | undefined {
    const now = clock();
    const found = cache.get(cacheKeyOf(value), now.getTime());
    return found ? accept(found, now, reply) : undefined;
  }

  async function verifyApiKey(value: string, reply: FastifyReply): Promise<AuthContext> {
    const cached = verifyCached(value, reply);
    if (cached) return cached;
    if (!isWellFormedApiKey(value)) throw unauthenticated();
    const readAt = cache.generation;
    const found = await store.keys.findByHash(hasher(value));
    if (!found) throw unauthenticated();
    const now = clock();
    cache.set(cacheKeyOf(value), found, now.getTime(), readAt);
    return accept(found, now, reply);
  }

  /**
   * The hot path: an API key (`xi-api-key`, or a `Bearer brz_…`) that is in the cache. Undefined
   * for anything else, which `authenticate` then handles (and refuses) in full.
   */
  function authenticateCached(request: FastifyRequest, reply: FastifyReply): AuthContext | undefined {
    const xiKey = request.headers['xi-api-key'];
    if (typeof xiKey === 'string') return verifyCached(xiKey.trim(), reply);
    if (xiKey !== undefined) return undefined;
    const xKey = request.headers['x-api-key'];
    if (typeof xKey === 'string') return verifyCached(xKey.trim(), reply);
    if (xKey !== undefined) return undefined;
    const authorization = request.headers.authorization;
    if (authorization === undefined) return undefined;
    const token = BEARER.exec(authorization)?.[1];
    return token?.startsWith('brz_') ? verifyCached(token, reply) : undefined;
  }

  async function authenticate(request: FastifyRequest, reply: FastifyReply): Promise<AuthContext | null> {
    const xiKey = request.headers['xi-api-key'];
    if (xiKey !== undefined) {
      if (typeof xiKey !== 'string') throw unauthenticated();
      return verifyApiKey(xiKey.trim(), reply);
    }
    // second in rank (PLATFORM.md "Headers"): present, it decides alone, Bearer is then ignored
    const xKey = request.headers['x-api-key'];
    if (xKey !== undefined) {
      if (typeof xKey !== 'string') throw unauthenticated();
      return verifyApiKey(xKey.trim(), reply);
    }
    const authorization = request.headers.authorization;
    if (authorization !== undefined) {
      const m = BEARER.exec(authorization);
      if (!m?.[1]) throw unauthenticated('Malformed Authorization header: use "Bearer <key>".');
      const token = m[1];
      if (token.startsWith('brz_')) return verifyApiKey(token, reply);
      const viaJwt = authenticators.jwt ? await authenticators.jwt(token, request) : null;
      if (!viaJwt) throw unauthenticated('Invalid or expired bearer token.');
      return viaJwt;
    }
    return authenticators.session ? authenticators.session(request) : null;
  }

  async function authenticateRoute(
    request: FastifyRequest,
    reply: FastifyReply,
    mode: string,
  ): Promise<void> {
    const auth = await authenticate(request, reply);
    if (!auth && mode === 'required') {
      throw unauthenticated(
        'No credential: send an API key as "xi-api-key", "x-api-key" or "Authorization: Bearer".',
      );
    }
    request.auth = auth;
  }

  function authHook(mode: 'required' | 'optional'): onRequestHookHandler {
    // callback style, not async: a cached key costs no promise
    return function breezeAuth(request, reply, done) {
      let auth: AuthContext | undefined;
      try {
        auth = authenticateCached(request, reply);
      } catch (err) {
        return done(err as Error);
      }
      if (auth) {
        request.auth = auth;
        return done();
      }
      authenticateRoute(request, reply, mode).then(() => done(), done);
    };
  }

  app.decorateRequest('auth', null);
  // Only routes that authenticate get the hook (first among their own onRequest hooks, so before
  // a route's rate limit); /healthz and the pages pay nothing for it.
  app.addHook('onRoute', (route) => {
    const mode = route.config?.auth ?? 'none';
    if (mode === 'none') return;
    const own = route.onRequest === undefined ? [] : [route.onRequest].flat();
    route.onRequest = [authHook(mode), ...own];
  });
}

/** The authenticated caller of a route registered with `config.auth: 'required'`. */
export function requireAuth(request: FastifyRequest): AuthContext {
  if (!request.auth) throw unauthenticated();
  return request.auth;
}
