import { webcrypto } from 'node:crypto';
import { BreezeWebhookError } from './errors.js';
import { readLimited } from './http.js';

export { BreezeWebhookError } from './errors.js';

/** A Breeze webhook delivery's body (PLATFORM.md "Webhooks"). */
export interface BreezeWebhookEvent<T = Record<string, unknown>> {
  id: string;
  /** an audit action (`key.created`, `key.rotated`, ...), `key.expiring` or `ping` */
  type: string;
  created_at: string;
  data: T;
}

export interface VerifyWebhookOptions {
  /** the sending server's `<public URL>/.well-known/jwks.json` */
  jwksUrl: string;
  /** refuse a `t` older (or further in the future) than this many seconds (default 300) */
  toleranceS?: number;
  /**
   * your organization's id (`org_…`): refuse (`WRONG_ORG`) an event whose `data.org_id` differs.
   * Recommended: one server-wide key signs every organization's deliveries, so without it an admin
   * of another organization on the same server can send you its own genuinely signed events.
   */
  orgId?: string;
  /** "now" in ms since the epoch (tests) */
  now?: number;
  fetch?: typeof fetch;
}

interface KeySet {
  keys: Map<string, CryptoKey>;
  fetchedAt: number;
  loading: Promise<void> | null;
  lastAttempt: number;
}

type CryptoKey = webcrypto.CryptoKey;
const subtle = webcrypto.subtle;

const KEY_SETS = new Map<string, KeySet>();
/** a key set is reread after this long, and at once for an unknown kid (at most once a second) */
const MAX_AGE_MS = 10 * 60_000;
const UNKNOWN_KID_COOLDOWN_MS = 1000;
const HEADER = /^\s*t=(\d{1,12})\s*,\s*kid=([A-Za-z0-9_.:-]{1,128})\s*,\s*sig=([A-Za-z0-9_-]{86})={0,2}\s*$/;

async function loadKeySet(url: string, set: KeySet, doFetch: typeof fetch): Promise<void> {
  set.lastAttempt = performance.now();
  let res: Response;
  try {
    // the key set is read where it was configured, not wherever a redirect points
    res = await doFetch(url, {
      headers: { accept: 'application/json' },
      redirect: 'manual',
      signal: AbortSignal.timeout(5000),
    });
  } catch (err) {
    throw new BreezeWebhookError('JWKS_UNAVAILABLE', `The JWKS at ${url} cannot be reached.`, { cause: err });
  }
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => {});
    throw new BreezeWebhookError('JWKS_UNAVAILABLE', `The JWKS at ${url} answered ${res.status}.`);
  }
  let body: unknown;
  try {
    body = JSON.parse(await readLimited(res));
  } catch (err) {
    throw new BreezeWebhookError('JWKS_UNAVAILABLE', `The JWKS at ${url} is not JSON.`, { cause: err });
  }
  const list = (body as { keys?: unknown })?.keys;
  if (!Array.isArray(list))
    throw new BreezeWebhookError('JWKS_UNAVAILABLE', `The JWKS at ${url} has no "keys".`);
  const keys = new Map<string, CryptoKey>();
  for (const jwk of list as Array<Record<string, unknown>>) {
    if (
      jwk?.kty !== 'OKP' ||
      jwk.crv !== 'Ed25519' ||
      typeof jwk.x !== 'string' ||
      typeof jwk.kid !== 'string'
    ) {
      continue;
    }
    try {
      const key = await subtle.importKey(
        'jwk',
        { kty: 'OKP', crv: 'Ed25519', x: jwk.x },
        { name: 'Ed25519' },
        false,
        ['verify'],
      );
      keys.set(jwk.kid, key);
    } catch {
      // a malformed entry is skipped; the others still verify
    }
  }
  set.keys = keys;
  set.fetchedAt = performance.now();
}

async function keyFor(url: string, kid: string, doFetch: typeof fetch): Promise<CryptoKey> {
  let set = KEY_SETS.get(url);
  if (!set) {
    set = {
      keys: new Map(),
      fetchedAt: Number.NEGATIVE_INFINITY,
      loading: null,
      lastAttempt: Number.NEGATIVE_INFINITY,
    };
    KEY_SETS.set(url, set);
  }
  const s = set;
  const reload = () => {
    if (!s.loading) {
      s.loading = loadKeySet(url, s, doFetch).finally(() => {
        s.loading = null;
      });
    }
    return s.loading;
  };
  if (performance.now() - s.fetchedAt > MAX_AGE_MS) {
    // a read that failed holds the next one back a second: while the JWKS fails, a stream of
    // deliveries must not become a stream of JWKS requests
    if (s.loading) await s.loading;
    else if (performance.now() - s.lastAttempt < UNKNOWN_KID_COOLDOWN_MS) {
      throw new BreezeWebhookError(
        'JWKS_UNAVAILABLE',
        `The JWKS at ${url} could not be read a moment ago; it is asked again in a second.`,
      );
    } else await reload();
  }
  let key = s.keys.get(kid);
  if (!key) {
    if (s.loading) await s.loading;
    key = s.keys.get(kid);
  }
  if (!key) {
    // a kid we have not seen: the server may have rolled its key over since we last read the set;
    // reread it, at most once a second (waiting out the rest of that second) so made-up kids
    // cannot turn into a flood of JWKS requests
    // (a timer may fire a millisecond early, so after the wait we reread unless someone else
    // already did while we waited, rather than checking the clock again)
    const seen = s.lastAttempt;
    const wait = seen + UNKNOWN_KID_COOLDOWN_MS - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (s.loading) await s.loading;
    else if (s.lastAttempt === seen) await reload();
    key = s.keys.get(kid);
  }
  if (!key) throw new BreezeWebhookError('UNKNOWN_KID', 'The signature names a key the JWKS does not list.');
  return key;
}

/**
 * Checks a Breeze webhook delivery and returns its event. `rawBody` must be the body exactly as
 * received (bytes or the undecoded string), `header` the `breeze-signature` header. Throws
 * `BreezeWebhookError` for a missing or malformed header, a `t` outside the tolerance, an unknown
 * `kid`, a signature that does not match, a body that is not a Breeze event, or (with `orgId`) an
 * event of another organization; answer those with 400.
 */
export async function verifyWebhook<T = Record<string, unknown>>(
  rawBody: string | Uint8Array,
  header: string | null | undefined,
  opts: VerifyWebhookOptions,
): Promise<BreezeWebhookEvent<T>> {
  if (!opts?.jwksUrl) throw new TypeError('verifyWebhook needs { jwksUrl }');
  if (opts.orgId !== undefined && (typeof opts.orgId !== 'string' || opts.orgId.length === 0))
    throw new TypeError('orgId must be your organization id (org_…)');
  const tolerance = opts.toleranceS ?? 300;
  // NaN (a `Number(process.env.X)` of an unset variable) would pass every timestamp: no replay window
  if (typeof tolerance !== 'number' || !Number.isFinite(tolerance) || tolerance < 0)
    throw new TypeError('toleranceS must be a number of seconds, 0 or more');
  if (typeof header !== 'string' || header.length > 512) {
    throw new BreezeWebhookError('MALFORMED_SIGNATURE', 'Missing breeze-signature header.');
  }
  const m = HEADER.exec(header);
  if (!m)
    throw new BreezeWebhookError(
      'MALFORMED_SIGNATURE',
      'The breeze-signature header is not t=…,kid=…,sig=….',
    );
  const [, tText, kid, sig] = m as unknown as [string, string, string, string];
  const t = Number(tText);
  const nowS = (opts.now ?? Date.now()) / 1000;
  if (nowS - t > tolerance) {
    throw new BreezeWebhookError('TIMESTAMP_OUT_OF_TOLERANCE', `The signature is older than ${tolerance} s.`);
  }
  if (t - nowS > tolerance) {
    throw new BreezeWebhookError('TIMESTAMP_OUT_OF_TOLERANCE', 'The signature is dated in the future.');
  }
  const body = typeof rawBody === 'string' ? new TextEncoder().encode(rawBody) : rawBody;
  const signed = new Uint8Array(tText.length + 1 + body.byteLength);
  signed.set(new TextEncoder().encode(`${tText}.`), 0);
  signed.set(body, tText.length + 1);
  const key = await keyFor(opts.jwksUrl, kid, opts.fetch ?? globalThis.fetch.bind(globalThis));
  const signature = Buffer.from(sig, 'base64url');
  const ok = signature.length === 64 && (await subtle.verify({ name: 'Ed25519' }, key, signature, signed));
  if (!ok) throw new BreezeWebhookError('BAD_SIGNATURE', 'The signature does not match the body.');
  let event: unknown;
  try {
    event = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    throw new BreezeWebhookError('BAD_BODY', 'The signed body is not JSON.');
  }
  const e = event as Record<string, unknown> | null;
  if (
    typeof e !== 'object' ||
    e === null ||
    typeof e.id !== 'string' ||
    typeof e.type !== 'string' ||
    typeof e.created_at !== 'string' ||
    typeof e.data !== 'object' ||
    e.data === null
  ) {
    throw new BreezeWebhookError('BAD_BODY', 'The signed body is not a Breeze event.');
  }
  if (opts.orgId !== undefined && (e.data as Record<string, unknown>).org_id !== opts.orgId) {
    throw new BreezeWebhookError('WRONG_ORG', 'The event belongs to another organization.');
  }
  return e as unknown as BreezeWebhookEvent<T>;
}
