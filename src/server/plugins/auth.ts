import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isWellFormedApiKey } from '../../core/api-key.js';
import { HttpError } from '../../core/errors.js';
import { capScopes } from '../authz.js';
import type { AuthContext } from '../context.js';
import { isUsable, scopesOf } from '../store/keys.js';

/** Authenticators that later features plug in: JWT bearer tokens and browser sessions. */
export interface Authenticators {
  /** Verifies a non-API-key Bearer token; null when it is not a valid token. */
  jwt?: (token: string, request: FastifyRequest) => Promise<AuthContext | null>;
  /** Reads the browser session cookie; null when there is none or it is invalid. */
  session?: (request: FastifyRequest) => Promise<AuthContext | null>;
}

const LAST_USED_INTERVAL_MS = 60_000;
const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

export function unauthenticated(message = 'Missing, malformed, deleted or disabled API key.'): HttpError {
  return new HttpError('AUTH_REQUIRED', message);
}

/**
 * Authenticates requests to routes whose `config.auth` is 'required' or 'optional'.
 * `xi-api-key` wins over `Authorization: Bearer`; a key whose checksum fails is refused before
 * any lookup; verified keys are cached (see VerificationCache); `last_used_at` is written at most
 * once a minute per key, off the request path.
 */
export function registerAuth(app: FastifyInstance, authenticators: Authenticators): void {
  const { store, cache, hasher, clock } = app.breeze;
  const lastWritten = new Map<string, number>();
  store.onKeyChange((keyId) => cache.invalidateKey(keyId));

  function noteUse(keyId: string, lastUsedAt: string | null, nowMs: number): void {
    let last = lastWritten.get(keyId);
    if (last === undefined) {
      last = lastUsedAt ? Date.parse(lastUsedAt) : 0;
      lastWritten.set(keyId, last);
    }
    if (nowMs - last < LAST_USED_INTERVAL_MS) return;
    lastWritten.set(keyId, nowMs);
    if (lastWritten.size > 100_000) lastWritten.clear();
    store.keys.touch(keyId, new Date(nowMs).toISOString()).catch((err) => {
      app.log.warn({ err, keyId }, 'could not record last_used_at');
    });
  }

  async function verifyApiKey(value: string, reply: FastifyReply): Promise<AuthContext> {
    if (!isWellFormedApiKey(value)) throw unauthenticated();
    const hash = hasher(value);
    const now = clock();
    const nowMs = now.getTime();
    let found = cache.get(hash, nowMs);
    if (!found) {
      found = await store.keys.findByHash(hash);
      if (!found) throw unauthenticated();
      cache.set(hash, found, nowMs);
    }
    const { key, email, role } = found;
    // a key whose creator left its organization (role null) answers as if it did not exist
    if (!isUsable(key, now) || !role || !key.org_id || !key.project_id) throw unauthenticated();
    reply.header('x-breeze-api-key-id', key.id);
    noteUse(key.id, key.last_used_at, nowMs);
    const keyScopes = scopesOf(key);
    return {
      type: 'api_key',
      user: { id: key.user_id, email },
      scopes: capScopes(keyScopes, role),
      keyId: key.id,
      keyScopes,
      org: { id: key.org_id, name: found.org_name ?? '', role },
      project: { id: key.project_id, name: found.project_name ?? '' },
    };
  }

  async function authenticate(request: FastifyRequest, reply: FastifyReply): Promise<AuthContext | null> {
    const xiKey = request.headers['xi-api-key'];
    if (xiKey !== undefined) {
      if (typeof xiKey !== 'string') throw unauthenticated();
      return verifyApiKey(xiKey.trim(), reply);
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

  app.decorateRequest('auth', null);
  app.addHook('onRequest', async (request, reply) => {
    const mode = request.routeOptions.config?.auth ?? 'none';
    if (mode === 'none') return;
    const auth = await authenticate(request, reply);
    if (!auth && mode === 'required') {
      throw unauthenticated('No credential: send an API key as "xi-api-key" or "Authorization: Bearer".');
    }
    request.auth = auth;
  });
}

/** The authenticated caller of a route registered with `config.auth: 'required'`. */
export function requireAuth(request: FastifyRequest): AuthContext {
  if (!request.auth) throw unauthenticated();
  return request.auth;
}
