import * as nodeCrypto from 'node:crypto';
import { BreezeVerifyError } from './errors.js';
import { RevocationStream } from './events.js';
import { describeErrorBody, networkError, readLimited, safeToken } from './http.js';
import { createJwtChecker, type JwtAllow, type JwtChecker, type JwtResolve, resolveByAllow } from './jwt.js';
import { isWellFormedKey, KEY_LENGTH, looksLikeJwt } from './key-format.js';
import { LruMap } from './lru.js';
import { memberResolver } from './members.js';
import type { BreezeScope, KeyVerifier, ValidResult, VerifyOptions, VerifyResult } from './types.js';
import { parseVerifyAnswer } from './validate.js';

export interface VerifierOptions {
  /** the Breeze server's base URL, e.g. `https://breeze.example.com` */
  server: string;
  /** a Breeze key of your organization with the `verify` scope */
  apiKey: string;
  /** how long an answer is reused while the revocation stream is connected (default 60 000 ms) */
  cacheTtlMs?: number;
  /** how long a refusal (unknown, disabled, expired key) is reused (default min(cacheTtlMs, 5 000)) */
  negativeTtlMs?: number;
  /** the most keys remembered at once; the least recently used go first (default 10 000) */
  maxEntries?: number;
  /** per request to the server (default 5 000 ms) */
  timeoutMs?: number;
  /** subscribe to `GET /v1/keys/events` to drop revoked keys at once (default true) */
  events?: boolean;
  /**
   * accept the email-code flow's JWTs, checked offline against the JWKS (default true). A valid JWT
   * proves a Breeze user, not a member of your organization (anyone can sign up on a shared
   * server): by default a token passes only when its user is a member of the organization of
   * `apiKey` (the member list is read with that key and cached for a few seconds), with the scopes
   * of their role there. `jwtUsers` or `allowJwt` replace that check with yours; `false` refuses
   * every JWT (`MALFORMED`, as for anything that is not a key).
   */
  jwt?: boolean;
  /** the Breeze user ids (`usr_…`, the tokens' `sub`) accepted, instead of the membership check; others are `NOT_FOUND` */
  jwtUsers?: readonly string[];
  /**
   * decides for each verified token (its claims: `sub` is the user id) whether its user may in,
   * instead of the membership check; false is `NOT_FOUND`. With `jwtUsers` too, a token must pass both.
   */
  allowJwt?: JwtAllow;
  /** the JWTs' `iss`: the server's public URL (default: `server`) */
  issuer?: string;
  /** a `fetch` to use instead of the global one (tests, proxies, custom agents) */
  fetch?: typeof fetch;
  /** told about revocation-stream trouble (the verifier copes on its own); default: silent */
  onError?: (err: Error) => void;
}

/** `verifier[INSPECT]()`: the cache's keys (hashes), for tests and debugging; never a key itself. */
export const INSPECT: unique symbol = Symbol.for('@breeze/verify.inspect');

/**
 * Guards only: a verifier's cached answer for a key and scopes (sorted, without repeats: see
 * normalizeScopes), synchronously, or undefined when `verify` has to decide. A use like any other:
 * it counts against the key's rate-limit window.
 */
type CachedLookup = (key: string, scopes: readonly string[]) => VerifyResult | undefined;

/**
 * The cache lookups of the verifiers createVerifier made, with their own `verify`. Module-private:
 * a guard takes the shortcut only for such a verifier whose `verify` is still its own. A wrapper, a
 * copy, or a verifier whose `verify` was replaced (a deny-list, tracing) goes through `verify`.
 */
const lookups = new WeakMap<object, { lookup: CachedLookup; verify: KeyVerifier['verify'] }>();

/** The cached answer of a verifier of createVerifier's; undefined when `verify` has to decide. */
export function cachedAnswer(
  verifier: KeyVerifier,
  key: string,
  scopes: readonly string[],
): VerifyResult | undefined {
  const own = lookups.get(verifier);
  return own !== undefined && verifier.verify === own.verify ? own.lookup(key, scopes) : undefined;
}

/** A verifier: `verify()` with a local cache kept honest by the revocation stream. */
export interface Verifier extends KeyVerifier {
  verify(key: string, opts?: VerifyOptions): Promise<VerifyResult>;
  /** whether the revocation stream is connected now (while it is not, answers are reused for 1 s at most) */
  readonly streamConnected: boolean;
  /** how many answers are cached now */
  readonly cacheSize: number;
  /** forgets every cached answer */
  clearCache(): void;
  /** ends the revocation stream and refuses further verifications (`CLOSED`) */
  close(): Promise<void>;
  [INSPECT](): string[];
}

/** While the revocation stream is down, a cached answer is trusted this long at most. */
export const STREAM_DOWN_TTL_MS = 1000;
/**
 * After the stream comes up again, how long answers cached before it are still held to the 1 s rule
 * (the server replays the `key.revoked` events missed in between right after the headers).
 */
const RESUME_GRACE_MS = 2000;
/**
 * How much later than the cached window's end a server answer's window may end and still be the
 * same window (reset_s is whole seconds, rounded up, and each answer arrives a latency late).
 */
const SAME_WINDOW_SLACK_MS = 2000;
const SCOPE_SHAPE = /^[a-z][a-z0-9_:.-]{0,63}$/;
/**
 * A VALID answer for a key this long after its `key.revoked` is not cached: behind a load balancer
 * the answer may come from another Breeze instance that still holds the key in its own short cache
 * (500 ms by default), and caching it would stretch that into this cache's TTL.
 */
export const REVOKED_NO_CACHE_MS = 2000;

interface Entry {
  result: VerifyResult;
  /** performance.now() when the server answered */
  storedAt: number;
  /** performance.now() after which the entry is never used, whatever the stream does */
  hardExpiry: number;
  keyId: string | null;
  /** local count of uses left in the key's rate-limit window (VALID answers with a limit) */
  remaining?: number;
  /** performance.now() when that window resets */
  resetAt?: number;
  /** uses of that window answered from this cache, which the server never saw */
  unseen?: number;
}

type OneShotHash = (algorithm: string, data: string, encoding: 'base64url') => string;
// crypto.hash (Node >= 20.12): a third of createHash's cost for a key, which matters on the warm
// path of every guarded request; runtimes without it (older Deno) use createHash
const oneShot = (nodeCrypto as unknown as { hash?: OneShotHash }).hash;

/** The cache's name for a key: its SHA-256 (the key itself is never kept). */
function hashKey(key: string): string {
  return typeof oneShot === 'function'
    ? oneShot('sha256', key, 'base64url')
    : nodeCrypto.createHash('sha256').update(key).digest('base64url');
}

/** Scopes as the cache compares them: checked (a TypeError names one that is not a scope), sorted, once each. */
export function normalizeScopes(scopes: readonly BreezeScope[] | undefined): string[] {
  if (!scopes || scopes.length === 0) return [];
  for (const s of scopes) {
    if (typeof s !== 'string' || !SCOPE_SHAPE.test(s)) {
      throw new TypeError(`not a Breeze scope: ${JSON.stringify(String(s)).slice(0, 70)}`);
    }
  }
  return [...new Set(scopes)].sort();
}

function hasScopes(granted: readonly string[], wanted: readonly string[]): boolean {
  for (const s of wanted) if (!granted.includes(s)) return false;
  return true;
}

/**
 * Creates a verifier for Breeze keys (and, opted in, JWTs of the users you allow). Keys are checked
 * with `POST /v1/keys/verify` and the answer cached per SHA-256 of the key (the key itself is never
 * kept); JWTs are checked offline against `/.well-known/jwks.json`. Answers never say "valid" unless the server (or the JWKS) did:
 * if Breeze cannot be asked, `verify` throws a `BreezeVerifyError`.
 */
export function createVerifier(options: VerifierOptions): Verifier {
  if (!options || typeof options.server !== 'string' || typeof options.apiKey !== 'string') {
    throw new TypeError('createVerifier needs { server, apiKey }');
  }
  let base: URL;
  try {
    base = new URL(options.server);
  } catch {
    throw new TypeError(`not a URL: ${JSON.stringify(options.server).slice(0, 200)}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError('server must be http(s)');
  const server = base.href.replace(/\/+$/, '');
  if (!isWellFormedKey(options.apiKey)) {
    throw new TypeError(
      'apiKey is not a Breeze key (brz_…); create one with "breeze keys create --scopes verify"',
    );
  }
  const apiKey = options.apiKey;
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const ttl = options.cacheTtlMs ?? 60_000;
  const negativeTtl = options.negativeTtlMs ?? Math.min(ttl, 5000);
  const timeoutMs = options.timeoutMs ?? 5000;
  const onError = options.onError ?? (() => {});
  if (!(ttl >= 0) || !(negativeTtl >= 0) || !(timeoutMs > 0))
    throw new RangeError('TTLs and timeout must be >= 0');

  // a key's answers: under hash(key) for a VALID (scopes checked locally) or a scope-independent
  // refusal; under hash(key)|scopes for INSUFFICIENT_SCOPE (it depends on the scopes asked for)
  const byKeyId = new Map<string, Set<string>>();
  const forget = (cacheKey: string, entry: Entry) => {
    if (!entry.keyId) return;
    const set = byKeyId.get(entry.keyId);
    set?.delete(cacheKey);
    if (set && set.size === 0) byKeyId.delete(entry.keyId);
  };
  const cache = new LruMap<string, Entry>(options.maxEntries ?? 10_000, forget);
  // the request on its way for a key (by hash), and the scopes it asked for
  const inflight = new Map<string, { scopes: string; promise: Promise<VerifyResult> }>();
  // key ids revoked recently: an answer that was on its way when its key was revoked is not cached
  const recentlyRevoked = new Map<string, number>();
  let closed = false;

  const dropKeyId = (keyId: string) => {
    const now = performance.now();
    recentlyRevoked.set(keyId, now);
    for (const [id, at] of recentlyRevoked) {
      if (now - at > 60_000) recentlyRevoked.delete(id);
      else break;
    }
    const set = byKeyId.get(keyId);
    if (!set) return;
    for (const k of set) cache.delete(k);
    byKeyId.delete(keyId);
  };
  const clearCache = () => {
    cache.clear();
    byKeyId.clear();
  };

  /** performance.now() when the revocation stream last came up */
  let upAt = Number.NEGATIVE_INFINITY;
  const stream =
    options.events === false
      ? null
      : new RevocationStream({
          url: `${server}/v1/keys/events`,
          apiKey,
          fetch: doFetch,
          // pings come at least every 15 s: trust a quiet connection 20 s, drop it after 30 s
          quietLimitMs: 20_000,
          idleTimeoutMs: 30_000,
          minBackoffMs: 250,
          maxBackoffMs: 15_000,
          onRevoked: dropKeyId,
          // without a Last-Event-ID the server cannot replay what we missed: start afresh
          onUp: (resumed) => {
            upAt = performance.now();
            if (!resumed) clearCache();
          },
          onDown: () => {},
          onError,
        });

  const resolve = jwtResolve(options, { server, apiKey, fetch: doFetch, timeoutMs });
  const jwt: JwtChecker | null = resolve
    ? createJwtChecker({
        jwksUrl: `${server}/.well-known/jwks.json`,
        issuer: (options.issuer ?? server).replace(/\/+$/, ''),
        fetch: doFetch,
        timeoutMs,
        resolve,
      })
    : null;

  // An answer cached before the stream (re)connected is trusted as if the stream were up only once
  // the replay of what it missed had time to arrive: the headers come first, the missed
  // `key.revoked` events after them (a slow server: after its query). Until then, the 1 s rule.
  const fresh = (e: Entry, now: number) =>
    now < e.hardExpiry &&
    (stream?.connected && (e.storedAt >= upAt || now - upAt >= RESUME_GRACE_MS)
      ? true
      : now - e.storedAt < STREAM_DOWN_TTL_MS);

  function fromCache(hash: string, scopes: readonly string[], now: number): VerifyResult | undefined {
    const e = cache.get(hash);
    if (e && fresh(e, now)) {
      if (!e.result.valid) return e.result;
      // missing scopes, a new rate-limit window, or the window used up locally: the server decides
      // (and counts the refusal), unless it just did for these scopes
      const usable =
        hasScopes(e.result.scopes, scopes) &&
        (e.remaining === undefined || e.resetAt === undefined || (now < e.resetAt && e.remaining > 0));
      if (usable) {
        if (e.remaining !== undefined) {
          e.remaining--;
          e.unseen = (e.unseen ?? 0) + 1;
        }
        return e.result;
      }
    }
    // a refusal that depends on the scopes asked for, or a RATE_LIMITED (stored under the same name)
    const s = cache.get(`${hash}|${scopes.join(',')}`);
    if (s && fresh(s, now)) return s.result;
    return undefined;
  }

  /**
   * Caches an answer and returns what to answer. A VALID answer inside a window this cache already
   * spent uses of is charged with those uses: the server counted only the verifications that reached
   * it, so without this a warm cache would let a key far past its limit (each server answer would
   * open a fresh local allowance). When the uses exceed the limit, the answer is RATE_LIMITED.
   */
  function store(hash: string, scopes: string[], result: VerifyResult, startedAt: number): VerifyResult {
    const now = performance.now();
    if (result.valid) {
      const keyId = result.key_id;
      const revokedAt = keyId ? recentlyRevoked.get(keyId) : undefined;
      // revoked while the request was on its way, or so lately that another instance may not know yet
      if (revokedAt !== undefined && (revokedAt >= startedAt || now - revokedAt < REVOKED_NO_CACHE_MS))
        return result;
      let hardExpiry = now + ttl;
      if (result.expires_at)
        hardExpiry = Math.min(hardExpiry, now + (Date.parse(result.expires_at) - Date.now()));
      const entry: Entry = { result, storedAt: now, hardExpiry, keyId };
      if (result.ratelimit && result.ratelimit.limit > 0) {
        const old = cache.get(hash);
        const resetAt = now + result.ratelimit.reset_s * 1000;
        // the uses answered here count only while the server is still in the window they were spent
        // in: an answer whose window ends well after that one's (reset_s is rounded up, and arrives a
        // latency late, so the cache's window outlives the server's by up to a second or so) comes
        // from a new window, which those uses are no part of
        const sameWindow =
          old?.resetAt !== undefined &&
          now < old.resetAt &&
          resetAt <= old.resetAt + SAME_WINDOW_SLACK_MS &&
          old.keyId === keyId;
        const carried = sameWindow ? (old.unseen ?? 0) : 0;
        entry.remaining = result.ratelimit.remaining - carried;
        entry.unseen = carried;
        entry.resetAt = resetAt;
        if (carried > 0 && old?.resetAt !== undefined) entry.resetAt = Math.max(entry.resetAt, old.resetAt);
      }
      cache.set(hash, entry);
      if (keyId) {
        let set = byKeyId.get(keyId);
        if (!set) {
          set = new Set();
          byKeyId.set(keyId, set);
        }
        set.add(hash);
      }
      if (entry.remaining !== undefined && entry.remaining < 0 && entry.resetAt !== undefined) {
        const limited: VerifyResult = {
          valid: false,
          code: 'RATE_LIMITED',
          retry_after_s: Math.max(1, Math.ceil((entry.resetAt - now) / 1000)),
        };
        store(hash, scopes, limited, startedAt);
        return limited;
      }
      return result;
    }
    if (result.code === 'RATE_LIMITED') {
      // remembered until the window resets (when known), so a flood does not become a flood of requests
      const wait = (result.retry_after_s ?? 1) * 1000;
      cache.set(`${hash}|${scopes.join(',')}`, {
        result,
        storedAt: now,
        hardExpiry: now + Math.min(wait, negativeTtl),
        keyId: null,
      });
      return result;
    }
    const cacheKey = result.code === 'INSUFFICIENT_SCOPE' ? `${hash}|${scopes.join(',')}` : hash;
    cache.set(cacheKey, { result, storedAt: now, hardExpiry: now + negativeTtl, keyId: null });
    return result;
  }

  async function ask(key: string, scopes: string[]): Promise<VerifyResult> {
    const body = JSON.stringify(scopes.length > 0 ? { key, scopes } : { key });
    let res: Response;
    try {
      res = await doFetch(`${server}/v1/keys/verify`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', 'x-api-key': apiKey },
        body,
        // never follow a redirect: it would carry our key and the checked key to wherever it points
        // (a 3xx is not the documented answer: BAD_RESPONSE)
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw networkError(err, server, timeoutMs);
    }
    const requestId = res.headers.get('x-request-id') ?? undefined;
    let text: string;
    try {
      text = await readLimited(res);
    } catch (err) {
      if (err instanceof BreezeVerifyError) throw err;
      throw networkError(err, server, timeoutMs);
    }
    const rid = safeToken(requestId);
    const opts = { status: res.status, ...(rid ? { requestId: rid } : {}) };
    if (res.status === 200) return parseVerifyAnswer(text, res.status, rid);
    const { code } = describeErrorBody(text);
    const suffix = code ? ` (${code})` : '';
    if (res.status === 401) {
      throw new BreezeVerifyError(
        'UNAUTHORIZED',
        `The Breeze server refused the verifier's own API key${suffix}: it is wrong, disabled, expired or deleted.`,
        opts,
      );
    }
    if (res.status === 403) {
      throw new BreezeVerifyError(
        'FORBIDDEN',
        `The verifier's API key may not verify keys${suffix}: it needs the "verify" scope (breeze keys create --scopes verify).`,
        opts,
      );
    }
    if (res.status === 429) {
      throw new BreezeVerifyError('THROTTLED', "The verifier's own API key is over its rate limit.", opts);
    }
    if (res.status >= 500) {
      throw new BreezeVerifyError(
        'SERVER_ERROR',
        `The Breeze server failed with ${res.status}${suffix}.`,
        opts,
      );
    }
    throw new BreezeVerifyError(
      'BAD_RESPONSE',
      `The Breeze server answered ${res.status}${suffix} to a verification.`,
      opts,
    );
  }

  async function verify(key: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
    if (closed) throw new BreezeVerifyError('CLOSED', 'This verifier was closed.');
    const scopes = normalizeScopes(opts.scopes);
    if (typeof key !== 'string') return { valid: false, code: 'MALFORMED' };
    if (!isWellFormedKey(key)) {
      if (jwt && looksLikeJwt(key)) return jwt.verify(key, scopes);
      return { valid: false, code: 'MALFORMED' };
    }
    const hash = hashKey(key);
    // one request per key at a time: a check that finds one on its way waits for it (its answer if
    // it asked for the same scopes; otherwise the cache it filled decides, or this check asks next;
    // its error, if Breeze could not be asked). A rate-limited VALID is not simply shared: the
    // server counted one use, so each waiter takes its use from the cache it filled (charged as
    // unseen), and once that is spent asks (or is refused) like any other check.
    for (;;) {
      const now = performance.now();
      const cached = fromCache(hash, scopes, now);
      if (cached) return cached;
      const pending = inflight.get(hash);
      if (!pending) break;
      const sameScopes = pending.scopes === scopes.join(',');
      const answer = await pending.promise; // Breeze could not be asked just now: neither can this check
      if (closed) throw new BreezeVerifyError('CLOSED', 'This verifier was closed.');
      if (sameScopes && !(answer.valid && answer.ratelimit && answer.ratelimit.limit > 0)) return answer;
    }
    const now = performance.now();
    const p = (async () => {
      try {
        const result = await ask(key, scopes);
        return closed ? result : store(hash, scopes, result, now);
      } finally {
        inflight.delete(hash);
      }
    })();
    inflight.set(hash, { scopes: scopes.join(','), promise: p });
    return p;
  }

  // no format check: only answers for well-formed keys are cached, and a hash found is the same key
  const lookup: CachedLookup = (key, scopes) =>
    closed || typeof key !== 'string' || key.length !== KEY_LENGTH || !key.startsWith('brz_')
      ? undefined
      : fromCache(hashKey(key), scopes, performance.now());
  const made: Verifier = {
    verify,
    [INSPECT]: () => [...cache.keys()],
    get streamConnected() {
      return stream?.connected ?? false;
    },
    get cacheSize() {
      return cache.size;
    },
    clearCache,
    async close() {
      closed = true;
      clearCache();
      await stream?.close();
    },
  };
  lookups.set(made, { lookup, verify });
  return made;
}

/**
 * Who may in with a JWT, and as whom (null: JWTs are not accepted). A JWT names a Breeze user and
 * no organization, so accepting every valid one would let anyone who signs up on the server pass:
 * by default only members of the verifier key's organization do (memberResolver); `jwtUsers` and
 * `allowJwt` put the application's own check in its place.
 */
function jwtResolve(
  options: VerifierOptions,
  conn: { server: string; apiKey: string; fetch: typeof fetch; timeoutMs: number },
): JwtResolve | null {
  const { jwtUsers, allowJwt } = options;
  if (jwtUsers !== undefined) {
    if (!Array.isArray(jwtUsers) || jwtUsers.some((u) => typeof u !== 'string' || u.length === 0))
      throw new TypeError('jwtUsers must be an array of Breeze user ids (usr_…)');
  }
  if (allowJwt !== undefined && typeof allowJwt !== 'function')
    throw new TypeError('allowJwt must be a function (claims) => boolean');
  if (options.jwt === false) return null;
  if (jwtUsers === undefined && allowJwt === undefined) return memberResolver(conn);
  const users = jwtUsers === undefined ? null : new Set(jwtUsers);
  return resolveByAllow(async (claims) => {
    if (users && !users.has(claims.sub)) return false;
    return allowJwt ? (await allowJwt(claims)) === true : true;
  });
}

/** Narrows a result to a valid one. */
export function isValid(result: VerifyResult): result is ValidResult {
  return result.valid;
}
