import { isIP, isIPv4 } from 'node:net';
import {
  type CompactJWSHeaderParameters,
  createLocalJWKSet,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import {
  guardedLookup,
  type Resolver,
  resolveTarget,
  type TargetPolicy,
  TargetRefused,
} from './webhook-target.js';

/**
 * Why an OIDC token was refused. Carried to the exchange route, which answers a plain 401 and logs
 * `reason` (never the token): the caller learns nothing about which check failed.
 */
export class OidcRefusal extends Error {
  constructor(
    readonly reason: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(reason);
    this.name = 'OidcRefusal';
  }
}

/** Limits of every outbound fetch to an issuer (discovery document, JWKS). */
export const ISSUER_FETCH_TIMEOUT_MS = 5_000;
export const ISSUER_FETCH_MAX_BYTES = 256 * 1024;
const MAX_REDIRECTS = 3;
const MAX_KEYS = 100;

function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return isIPv4(h) && h.startsWith('127.');
}

/**
 * Why `url` cannot be an issuer (or a JWKS address) of this server, or null when it can: `https`
 * only, or `http` on a loopback address when the server runs with `--allow-http-issuers`; no user
 * info; an issuer (not a JWKS address) has no query or fragment.
 */
export function issuerUrlProblem(
  url: string,
  allowHttp: boolean,
  kind: 'issuer' | 'jwks' = 'issuer',
): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'not a URL';
  }
  if (u.username || u.password) return 'a URL with credentials';
  // OpenID Connect Discovery: an issuer has no query or fragment (its `iss` claim must equal it)
  if (kind === 'issuer' && /[?#]/.test(url)) return 'a URL with a query or fragment';
  if (u.protocol === 'https:') return null;
  if (u.protocol !== 'http:') return `scheme ${u.protocol} (https only)`;
  if (!allowHttp) return 'an http URL (https only; the server allows http issuers with --allow-http-issuers)';
  if (!isLoopbackHost(u.hostname))
    return 'an http URL on a non-loopback host (http is allowed on loopback only)';
  return null;
}

/**
 * GET `url` as JSON: a timeout over the whole exchange, a cap on the body, and redirects followed
 * only within the same origin (an issuer must not send us to another host).
 */
export async function fetchJson(
  url: string,
  opts: { timeoutMs?: number; maxBytes?: number; guard?: IssuerGuard } = {},
): Promise<unknown> {
  const timeoutMs = opts.timeoutMs ?? ISSUER_FETCH_TIMEOUT_MS;
  const maxBytes = opts.maxBytes ?? ISSUER_FETCH_MAX_BYTES;
  const signal = AbortSignal.timeout(timeoutMs);
  let current = new URL(url);
  for (let hop = 0; ; hop++) {
    let res: Awaited<ReturnType<typeof undiciFetch>>;
    try {
      // an IP literal is never looked up, so the guard's lookup would not see it: check it here
      const literal = current.hostname.replace(/^\[|\]$/g, '');
      if (opts.guard && isIP(literal) !== 0) await resolveTarget(current.hostname, opts.guard.policy);
      res = await undiciFetch(current, {
        redirect: 'manual',
        signal,
        headers: { accept: 'application/json' },
        ...(opts.guard ? { dispatcher: opts.guard.agent } : {}),
      });
    } catch (err) {
      const refused = refusedAddress(err);
      if (refused) throw new OidcRefusal('issuer address refused', { url: current.href, error: refused });
      throw new OidcRefusal('issuer fetch failed', {
        url: current.href,
        error: signal.aborted ? `timeout after ${timeoutMs} ms` : String((err as Error).message),
      });
    }
    if (res.status >= 300 && res.status < 400) {
      await res.body?.cancel().catch(() => {});
      const location = res.headers.get('location');
      const next = location ? new URL(location, current) : null;
      if (!next || next.origin !== current.origin || hop >= MAX_REDIRECTS) {
        throw new OidcRefusal('issuer redirect refused', { url: current.href, location });
      }
      current = next;
      continue;
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      throw new OidcRefusal('issuer fetch failed', { url: current.href, status: res.status });
    }
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > maxBytes) {
      await res.body?.cancel().catch(() => {});
      throw new OidcRefusal('issuer answer too large', { url: current.href, bytes: declared });
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    try {
      if (res.body) {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          size += chunk.byteLength;
          if (size > maxBytes) {
            throw new OidcRefusal('issuer answer too large', { url: current.href, bytes: size });
          }
          chunks.push(chunk);
        }
      }
    } catch (err) {
      if (err instanceof OidcRefusal) throw err;
      throw new OidcRefusal('issuer fetch failed', {
        url: current.href,
        error: signal.aborted ? `timeout after ${timeoutMs} ms` : String((err as Error).message),
      });
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw new OidcRefusal('issuer answer is not JSON', { url: current.href });
    }
  }
}

/**
 * The private-address guard of issuer fetches (the webhook SSRF guard, webhook-target.ts): every
 * address a name resolves to must be public, and the socket connects to exactly the checked address.
 */
export interface IssuerGuard {
  policy: TargetPolicy;
  agent: Agent;
}

export function issuerGuard(resolve?: Resolver, timeoutMs = ISSUER_FETCH_TIMEOUT_MS): IssuerGuard {
  const policy: TargetPolicy = { allowPrivate: false, ...(resolve ? { resolve } : {}) };
  return { policy, agent: new Agent({ connect: { lookup: guardedLookup(policy), timeout: timeoutMs } }) };
}

/** The guard's refusal inside a fetch error (its lookup error, or a literal refused up front), if any. */
function refusedAddress(err: unknown): string | null {
  for (
    let e = err as { message?: string; code?: string; cause?: unknown } | undefined, i = 0;
    e && i < 5;
    i++
  ) {
    if (e instanceof TargetRefused || e.code === 'EWEBHOOKTARGET') return String(e.message);
    e = e.cause as typeof e;
  }
  return null;
}

interface IssuerEntry {
  jwksUri: string;
  getKey: JWTVerifyGetKey;
  kids: string[];
  fetchedAt: number;
}

export interface IssuerKeysOptions {
  allowHttp: boolean;
  clock: () => Date;
  /** how long a fetched JWKS is used before it is fetched again (default 10 minutes) */
  maxAgeMs?: number;
  /** the least time between two fetches of one issuer's JWKS for an unknown `kid` (default 30 s) */
  cooldownMs?: number;
  timeoutMs?: number;
  maxBytes?: number;
  /** resolves issuer hosts for the private-address guard (which is off when `allowHttp` is on) */
  resolve?: Resolver;
}

/**
 * The signing keys of OIDC issuers: discovery (`<issuer>/.well-known/openid-configuration`, whose
 * `issuer` must be the token's), then its `jwks_uri`, cached per issuer. A token whose `kid` is not
 * in the cached set triggers one refetch (key rotation), at most once per cooldown so that random
 * `kid`s cannot make us hammer the issuer. A failed refresh keeps serving the last good set, and
 * the cooldown counts from every fetch, failed ones too: an issuer that is down (or a host that is
 * no issuer, named in a trust) is not asked again for every token sent with its `iss`.
 */
export class IssuerKeys {
  private readonly cache = new Map<string, IssuerEntry>();
  private readonly inflight = new Map<string, Promise<IssuerEntry>>();
  /** when each issuer was last fetched from (successfully or not) */
  private readonly attempts = new Map<string, number>();
  private readonly maxAgeMs: number;
  private readonly cooldownMs: number;

  private readonly guard: IssuerGuard | undefined;

  constructor(private readonly opts: IssuerKeysOptions) {
    // `--allow-http-issuers` (tests, development) talks to loopback issuers: no address guard then
    this.guard = opts.allowHttp ? undefined : issuerGuard(opts.resolve, opts.timeoutMs);
    this.maxAgeMs = opts.maxAgeMs ?? 10 * 60_000;
    this.cooldownMs = opts.cooldownMs ?? 30_000;
  }

  /** A `getKey` for jose's `jwtVerify` over the keys of `issuer`. */
  keyResolver(issuer: string): JWTVerifyGetKey {
    return async (header: CompactJWSHeaderParameters, token: FlattenedJWSInput) => {
      const now = this.opts.clock().getTime();
      let entry = this.cache.get(issuer);
      if (!entry || now - entry.fetchedAt >= this.maxAgeMs) {
        if (!this.mayFetch(issuer, now)) {
          if (!entry) throw new OidcRefusal('issuer fetch failed recently (not refetched)', { issuer });
          // the last refresh failed moments ago: the last good set still holds
        } else {
          try {
            entry = await this.refresh(issuer);
          } catch (err) {
            if (!entry) throw err;
            // the issuer is unreachable: the last good set still holds
          }
        }
      }
      try {
        return await entry.getKey(header, token);
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY') {
          throw new OidcRefusal('no usable key for the token', { kid: header.kid, alg: header.alg });
        }
        if (!this.mayFetch(issuer, now)) {
          throw new OidcRefusal('unknown kid (JWKS fetched recently; not refetched)', { kid: header.kid });
        }
      }
      const fresh = await this.refresh(issuer);
      try {
        return await fresh.getKey(header, token);
      } catch {
        throw new OidcRefusal('unknown kid (not in the issuer JWKS)', { kid: header.kid, kids: fresh.kids });
      }
    };
  }

  /** A fetch under way can be joined; a new one waits for the cooldown since the last one began. */
  private mayFetch(issuer: string, now: number): boolean {
    if (this.inflight.has(issuer)) return true;
    const last = this.attempts.get(issuer);
    return last === undefined || now - last >= this.cooldownMs;
  }

  private refresh(issuer: string): Promise<IssuerEntry> {
    let p = this.inflight.get(issuer);
    if (!p) {
      this.attempts.delete(issuer);
      this.attempts.set(issuer, this.opts.clock().getTime());
      if (this.attempts.size > 1000) this.attempts.delete(this.attempts.keys().next().value as string);
      p = this.load(issuer).finally(() => this.inflight.delete(issuer));
      this.inflight.set(issuer, p);
    }
    return p;
  }

  private async load(issuer: string): Promise<IssuerEntry> {
    const fetchOpts = { timeoutMs: this.opts.timeoutMs, maxBytes: this.opts.maxBytes, guard: this.guard };
    const discoveryUrl = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const doc = await fetchJson(discoveryUrl, fetchOpts);
    if (typeof doc !== 'object' || doc === null) {
      throw new OidcRefusal('discovery document is not an object', { url: discoveryUrl });
    }
    const { issuer: docIssuer, jwks_uri: jwksUri } = doc as { issuer?: unknown; jwks_uri?: unknown };
    if (docIssuer !== issuer) {
      throw new OidcRefusal('discovery document names another issuer', { issuer: docIssuer });
    }
    if (typeof jwksUri !== 'string') throw new OidcRefusal('discovery document has no jwks_uri');
    const problem = issuerUrlProblem(jwksUri, this.opts.allowHttp, 'jwks');
    if (problem) throw new OidcRefusal(`jwks_uri is ${problem}`, { jwks_uri: jwksUri });
    const jwks = await fetchJson(jwksUri, fetchOpts);
    const keys = (jwks as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys) || keys.length > MAX_KEYS) {
      throw new OidcRefusal('JWKS is malformed', { jwks_uri: jwksUri });
    }
    let getKey: JWTVerifyGetKey;
    try {
      getKey = createLocalJWKSet(jwks as JSONWebKeySet);
    } catch {
      throw new OidcRefusal('JWKS is malformed', { jwks_uri: jwksUri });
    }
    const entry: IssuerEntry = {
      jwksUri,
      getKey,
      kids: keys.map((k) => String((k as { kid?: unknown }).kid ?? '')).slice(0, 10),
      fetchedAt: this.opts.clock().getTime(),
    };
    this.cache.set(issuer, entry);
    // a bounded cache: issuers come from trusts, but an instance should not grow without end
    if (this.cache.size > 1000) this.cache.delete(this.cache.keys().next().value as string);
    return entry;
  }
}
