import { BreezeVerifyError } from './errors.js';
import { describeErrorBody, networkError, readLimited } from './http.js';
import type { JwtResolve } from './jwt.js';

/**
 * What a person's role lets them do, for a JWT (PLATFORM.md: `owner`/`admin` -> read, write, admin;
 * `member` -> read, write; `viewer` -> read; `verify` is a key's scope, never a person's).
 */
const ROLE_SCOPES: Readonly<Record<string, readonly string[]>> = {
  owner: ['read', 'write', 'admin'],
  admin: ['read', 'write', 'admin'],
  member: ['read', 'write'],
  viewer: ['read'],
};

/** How long the member list is trusted: a removed member's JWT stops passing within this. */
export const MEMBERS_TTL_MS = 5000;
/** A user not in the list refetches it at most this often (someone who has just joined). */
const MISS_REFETCH_MS = 1000;
/** A member list is larger than a verification answer: a few thousand members fit. */
const MAX_LIST_BYTES = 4 * 1024 * 1024;

interface Member {
  email: string | null;
  role: string;
}

/**
 * The default for email-code JWTs: a token passes when its user (`sub`) is a member of the
 * verifier's own organization (the one its API key belongs to, from `GET /v1/me`), with the scopes
 * of their role there. The signature is checked offline; the member list (`GET
 * /v1/orgs/:org_id/members`, with the verifier's key) is cached for MEMBERS_TTL_MS. When Breeze
 * cannot be asked, this throws (a guard answers 503): never "valid" on a guess.
 */
export function memberResolver(o: {
  server: string;
  apiKey: string;
  fetch: typeof fetch;
  timeoutMs: number;
}): JwtResolve {
  let orgId: string | null = null;
  let members: Map<string, Member> | null = null;
  let fetchedAt = Number.NEGATIVE_INFINITY;
  let inflight: Promise<void> | null = null;

  async function get(path: string): Promise<unknown> {
    let res: Response;
    try {
      res = await o.fetch(`${o.server}${path}`, {
        headers: { accept: 'application/json', 'x-api-key': o.apiKey },
        redirect: 'manual', // never carry the verifier's key to wherever a redirect points
        signal: AbortSignal.timeout(o.timeoutMs),
      });
    } catch (err) {
      throw networkError(err, o.server, o.timeoutMs);
    }
    let text: string;
    try {
      text = await readLimited(res, MAX_LIST_BYTES);
    } catch (err) {
      if (err instanceof BreezeVerifyError) throw err;
      throw networkError(err, o.server, o.timeoutMs);
    }
    const { code, requestId } = describeErrorBody(text);
    const opts = { status: res.status, ...(requestId ? { requestId } : {}) };
    const suffix = code ? ` (${code})` : '';
    if (res.status === 200) {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new BreezeVerifyError(
          'BAD_RESPONSE',
          `The Breeze server's answer to ${path} is not JSON.`,
          opts,
        );
      }
    }
    if (res.status === 401) {
      throw new BreezeVerifyError(
        'UNAUTHORIZED',
        `The Breeze server refused the verifier's own API key${suffix}: it is wrong, disabled, expired or deleted.`,
        opts,
      );
    }
    if (res.status === 403 || res.status === 404) {
      throw new BreezeVerifyError(
        'FORBIDDEN',
        `The verifier's API key may not read its organization's members${suffix}, needed to accept JWTs.`,
        opts,
      );
    }
    if (res.status === 429) {
      throw new BreezeVerifyError('THROTTLED', "The verifier's own API key is over its rate limit.", opts);
    }
    throw new BreezeVerifyError(
      res.status >= 500 ? 'SERVER_ERROR' : 'BAD_RESPONSE',
      `The Breeze server answered ${res.status}${suffix} to ${path}.`,
      opts,
    );
  }

  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

  async function refresh(): Promise<void> {
    if (!orgId) {
      const me = await get('/v1/me');
      const id = isObject(me) && isObject(me.org) ? me.org.id : undefined;
      if (typeof id !== 'string' || id === '') {
        throw new BreezeVerifyError(
          'BAD_RESPONSE',
          "The Breeze server did not name the verifier key's organization.",
        );
      }
      orgId = id;
    }
    const list = await get(`/v1/orgs/${encodeURIComponent(orgId)}/members`);
    if (!isObject(list) || !Array.isArray(list.data)) {
      throw new BreezeVerifyError(
        'BAD_RESPONSE',
        'The Breeze server sent a member list of an unknown shape.',
      );
    }
    const next = new Map<string, Member>();
    for (const m of list.data) {
      if (!isObject(m) || !isObject(m.user) || typeof m.user.id !== 'string' || typeof m.role !== 'string')
        continue;
      next.set(m.user.id, { email: typeof m.user.email === 'string' ? m.user.email : null, role: m.role });
    }
    members = next;
    fetchedAt = performance.now();
  }

  function load(): Promise<void> {
    inflight ??= refresh().finally(() => {
      inflight = null;
    });
    return inflight;
  }

  return async (claims) => {
    if (!members || performance.now() - fetchedAt >= MEMBERS_TTL_MS) await load();
    let member = members?.get(claims.sub);
    if (!member && performance.now() - fetchedAt >= MISS_REFETCH_MS) {
      await load();
      member = members?.get(claims.sub);
    }
    const scopes = member ? ROLE_SCOPES[member.role] : undefined;
    if (!member || !scopes || !orgId) return null;
    return { org_id: orgId, email: member.email, scopes };
  };
}
