import { createHash } from 'node:crypto';
import { decodeJwt, errors as joseErrors, jwtVerify } from 'jose';
import { HttpError } from '../../core/errors.js';
import { ulid } from '../../core/ids.js';
import { normaliseScopes, type Role, type Scope } from '../../core/types.js';
import { authInOrg, authorizeOrg, capScopes, type OrgAccess, requireScopesWithin } from '../authz.js';
import type { AuthContext, ServerContext } from '../context.js';
import type { MintedKey } from '../key-service.js';
import type { OidcTrustRow } from '../store/oidc.js';
import { hasNoControls, withoutControls } from '../validation.js';
import { type AuditBy, type RequestMeta, SYSTEM_ACTOR, SYSTEM_BY } from './audit.js';
import { IssuerKeys, issuerUrlProblem, OidcRefusal } from './oidc-issuer.js';
import { trustDeletedEvent, trustView } from './oidc-trusts.js';
import { OrgService } from './orgs.js';

/** The longest a key minted by an OIDC exchange lives (PLATFORM.md: `ttl_s` <= 3600). */
export const OIDC_MAX_TTL_S = 3600;
export const OIDC_DEFAULT_TTL_S = 900;
/** Clock skew tolerated on `exp`, `nbf` and `iat`. */
export const OIDC_CLOCK_TOLERANCE_S = 30;
/**
 * How much longer than its expiry check a used token is remembered: instances prune by their own
 * clocks, and one that is ahead must not forget a token another instance would still accept.
 */
export const OIDC_TOKEN_USE_MARGIN_S = 600;
/** A CI token living longer than this is refused (they live minutes; a long one is a misconfigured issuer). */
export const OIDC_MAX_TOKEN_LIFETIME_S = 24 * 3600;
/** Claims checked by the exchange itself: a trust cannot pin them. */
export const RESERVED_CLAIMS = ['iss', 'aud', 'exp', 'nbf', 'iat', 'jti'] as const;
/** The longest `iss` looked up (a trust's issuer is at most this long too). */
export const MAX_ISSUER_LENGTH = 512;
export const CLAIM_NAME_PATTERN = '^[A-Za-z0-9_.:-]{1,64}$';
/** The asymmetric algorithms CI issuers sign with; never `none` or an HMAC. */
const ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
];

export const newOidcTrustId = (now?: number): string => `oidc_${ulid(now)}`;

/** A trust as the API shows it (core/types.ts, shared with the client). */
export type { OidcTrust as OidcTrustView } from '../../core/types.js';

import type { OidcTrust as OidcTrustView } from '../../core/types.js';

export interface CreateTrustInput {
  issuer: string;
  audience?: string;
  claims: Record<string, string>;
  project_id?: string;
  scopes?: Scope[];
  ttl_s?: number;
}

function invalid(message: string): HttpError {
  return new HttpError('VALIDATION_FAILED', message);
}

/**
 * A trust's claim value against the token's: exact, or a `*` glob where each `*` stands for any run
 * of characters (`/` included: `refs/heads/release/*` matches `refs/heads/release/1.2/rc`). Strings,
 * numbers and booleans compare by their text; arrays and objects never match.
 */
export function claimMatches(expected: string, actual: unknown): boolean {
  if (typeof actual !== 'string' && typeof actual !== 'number' && typeof actual !== 'boolean') return false;
  const text = String(actual);
  if (!expected.includes('*')) return text === expected;
  return wildcardMatch(expected, text);
}

/**
 * `*` glob matching without a regular expression (a regex of several `.*` backtracks exponentially
 * on a non-match): two pointers, remembering only the last `*`, so at most O(pattern x text) steps.
 */
export function wildcardMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/** At most this many `*` in one claim value of a trust (after runs of `*` are collapsed). */
export const MAX_CLAIM_WILDCARDS = 4;

/** The first claim of `trust` the token does not satisfy, or null when all match. */
function failedClaim(claims: Record<string, string>, payload: Record<string, unknown>): string | null {
  for (const [name, expected] of Object.entries(claims)) {
    if (!Object.hasOwn(payload, name) || !claimMatches(expected, payload[name])) return name;
  }
  return null;
}

function audienceMatches(aud: unknown, audience: string): boolean {
  return typeof aud === 'string' ? aud === audience : Array.isArray(aud) && aud.includes(audience);
}

/** A key name from the token (`sub`, else the issuer host), printable and at most 100 characters. */
function keyName(payload: Record<string, unknown>, issuer: string): string {
  const subject = typeof payload.sub === 'string' ? payload.sub : new URL(issuer).host;
  const clean = withoutControls(subject).trim() || 'token';
  return `oidc: ${clean}`.slice(0, 100);
}

export interface ExchangeResult {
  minted: MintedKey;
  trust: OidcTrustRow;
}

/**
 * CI identity (PLATFORM.md "CI identity"): trust policies of an organization, and the exchange of
 * a CI job's OIDC token for a short-lived key.
 *
 * The key an exchange mints belongs to the trust's organization and project, and to the member who
 * created the trust (`created_by`): like every key, its effective scopes are its own ∩ that
 * member's current role, and it stops working when that member leaves. A trust whose creator has
 * left mints nothing.
 */
export class OidcService {
  private readonly orgs: OrgService;
  private readonly issuers: IssuerKeys;

  constructor(private readonly ctx: ServerContext) {
    this.orgs = new OrgService(ctx);
    this.issuers = new IssuerKeys({
      allowHttp: ctx.config.allowHttpIssuers === true,
      clock: ctx.clock,
      ...(ctx.config.oidcJwksCooldownMs !== undefined ? { cooldownMs: ctx.config.oidcJwksCooldownMs } : {}),
      ...(ctx.config.oidcResolve ? { resolve: ctx.config.oidcResolve } : {}),
    });
  }

  private async manage(auth: AuthContext, orgId: string): Promise<OrgAccess> {
    const access = await this.orgs.access(auth, orgId);
    authorizeOrg(access, 'oidc_trusts.manage');
    return access;
  }

  async list(auth: AuthContext, orgId: string): Promise<OidcTrustView[]> {
    await this.manage(auth, orgId);
    return (await this.ctx.store.oidc.listTrusts(orgId)).map(trustView);
  }

  async create(
    auth: AuthContext,
    orgId: string,
    input: CreateTrustInput,
    by: AuditBy = SYSTEM_BY,
  ): Promise<OidcTrustView> {
    const access = await this.manage(auth, orgId);
    const issuer = input.issuer.trim();
    // PLATFORM.md: issuers must be https unless the server runs with --allow-http-issuers; a trust
    // this server could never honour is refused now (400), not at every exchange (401)
    const problem = issuerUrlProblem(issuer, this.ctx.config.allowHttpIssuers === true);
    if (problem) throw invalid(`issuer must be an https URL; this is ${problem}.`);
    // `**` means what `*` means: collapse runs, then cap the wildcards of each value
    const claims = Object.fromEntries(
      Object.entries(input.claims).map(([name, value]) => [name, value.replace(/\*+/g, '*')]),
    );
    const wild = Object.entries(claims).filter(
      ([, value]) => value.split('*').length - 1 > MAX_CLAIM_WILDCARDS,
    );
    if (wild.length) {
      throw new HttpError(
        'VALIDATION_FAILED',
        `A claim value may hold at most ${MAX_CLAIM_WILDCARDS} "*" wildcards; ${wild.map(([n]) => n).join(', ')} has more.`,
        {
          details: wild.map(([n]) => ({
            field: `body.claims.${n}`,
            message: `has more than ${MAX_CLAIM_WILDCARDS} "*" wildcards`,
          })),
        },
      );
    }
    const names = Object.keys(claims);
    const reserved = names.filter((n) => (RESERVED_CLAIMS as readonly string[]).includes(n));
    if (reserved.length) {
      throw invalid(
        `claims cannot pin ${reserved.join(', ')}: issuer, audience and expiry are always checked.`,
      );
    }
    // Without one concrete value, every job of the issuer (every GitHub repository in the world)
    // could get a key: at least one claim must not be a bare wildcard.
    if (!Object.values(claims).some((v) => v.replace(/\*/g, '') !== '')) {
      throw invalid(
        'At least one claim needs a concrete value (e.g. "repository": "acme/api"), not only "*".',
      );
    }
    const scopes = normaliseScopes(input.scopes ?? ['read']);
    // the trust cannot hand out more than its creator holds in this organization
    requireScopesWithin(authInOrg(access), scopes);
    const now = this.ctx.clock();
    let projectId = input.project_id;
    if (projectId !== undefined) {
      const project = await this.ctx.store.orgs.project(projectId);
      if (!project || project.org_id !== orgId) throw new HttpError('NOT_FOUND', 'No such project.');
    } else {
      projectId = (await this.ctx.store.orgs.ensureDefaultProject(orgId, now)).id;
    }
    const row: OidcTrustRow = {
      id: newOidcTrustId(now.getTime()),
      org_id: orgId,
      project_id: projectId,
      issuer,
      audience: input.audience?.trim() || this.ctx.config.publicUrl,
      claims: JSON.stringify(claims),
      scopes: scopes.join(' '),
      ttl_s: input.ttl_s ?? OIDC_DEFAULT_TTL_S,
      created_by: auth.user.id,
      created_at: now.toISOString(),
    };
    const view = trustView(row);
    await this.ctx.store.transaction(async (tx) => {
      // the project may have been deleted since it was read: look again, locked against a deletion
      // under way (see OrgsRepo.project), so that the insert does not fail on its foreign key
      if (input.project_id !== undefined && !(await tx.orgs.project(row.project_id, true))) {
        throw new HttpError('NOT_FOUND', 'No such project.');
      }
      await tx.oidc.insertTrust(row);
      await this.ctx.audit.record(tx, by.meta, {
        action: 'oidc_trust.created',
        orgId,
        projectId: row.project_id,
        actor: by.actor,
        target: { type: 'oidc_trust', id: row.id, ownerId: row.created_by },
        details: {
          issuer: view.issuer,
          audience: view.audience,
          claims: view.claims,
          scopes: view.scopes,
          ttl_s: view.ttl_s,
        },
      });
    });
    return view;
  }

  async delete(auth: AuthContext, trustId: string, by: AuditBy = SYSTEM_BY): Promise<OidcTrustRow> {
    const row = await this.ctx.store.oidc.trust(trustId);
    if (!row) throw new HttpError('NOT_FOUND', 'No such OIDC trust.');
    try {
      await this.manage(auth, row.org_id);
    } catch (err) {
      // another organization's trust: as if it did not exist
      if (err instanceof HttpError && err.code === 'NOT_FOUND')
        throw new HttpError('NOT_FOUND', 'No such OIDC trust.');
      throw err;
    }
    await this.ctx.store.transaction(async (tx) => {
      // of concurrent deletes one records the event; the others are 404
      if (!(await tx.oidc.deleteTrust(trustId))) throw new HttpError('NOT_FOUND', 'No such OIDC trust.');
      await this.ctx.audit.record(tx, by.meta, trustDeletedEvent(row, by.actor));
    });
    return row;
  }

  /**
   * Trades a CI job's OIDC token for a short-lived key. Every refusal is an OidcRefusal whose
   * reason goes to the server log only; the route answers a plain 401.
   */
  async exchange(token: string, orgId?: string, meta: RequestMeta = SYSTEM_BY.meta): Promise<ExchangeResult> {
    let unverified: Record<string, unknown>;
    try {
      unverified = decodeJwt(token);
    } catch {
      throw new OidcRefusal('not a JWT');
    }
    const iss = unverified.iss;
    if (typeof iss !== 'string' || iss === '') throw new OidcRefusal('token without iss');
    // `iss` is unverified: check it before it reaches a query (PostgreSQL refuses a NUL byte with an
    // error, which must not become a 500) or the log
    if (iss.length > MAX_ISSUER_LENGTH) throw new OidcRefusal('issuer too long');
    if (!hasNoControls(iss)) throw new OidcRefusal('issuer with control characters');
    const problem = issuerUrlProblem(iss, this.ctx.config.allowHttpIssuers === true);
    if (problem) throw new OidcRefusal(`issuer is ${problem}`, { iss });
    // Nothing is fetched for an issuer no organization trusts: a stranger cannot make us call out.
    const trusts = (await this.ctx.store.oidc.trustsOfIssuer(iss)).filter(
      (t) => orgId === undefined || t.org_id === orgId,
    );
    if (trusts.length === 0) throw new OidcRefusal('no trust for this issuer', { iss, org_id: orgId });

    const now = this.ctx.clock();
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.issuers.keyResolver(iss), {
        issuer: iss,
        algorithms: ALGORITHMS,
        clockTolerance: OIDC_CLOCK_TOLERANCE_S,
        currentDate: now,
        requiredClaims: ['exp', 'jti'],
      }));
    } catch (err) {
      if (err instanceof OidcRefusal) throw err;
      throw new OidcRefusal(joseReason(err), { iss });
    }
    const exp = payload.exp as number;
    if (exp - now.getTime() / 1000 > OIDC_MAX_TOKEN_LIFETIME_S) {
      throw new OidcRefusal('token expires too far in the future', { iss, exp });
    }
    // jose checks that `iat` is a number, but whether it lies in the future only with maxTokenAge
    // (which would make `iat` required): a token issued later than now (beyond the skew) is refused
    const iat = payload.iat;
    if (typeof iat === 'number' && iat - now.getTime() / 1000 > OIDC_CLOCK_TOLERANCE_S) {
      throw new OidcRefusal('token issued in the future (iat)', { iss, iat });
    }
    const jti = payload.jti;
    if (typeof jti !== 'string' || jti === '' || jti.length > 512) throw new OidcRefusal('bad jti', { iss });

    const misses: { trust_id: string; failed: string }[] = [];
    const matching = trusts.filter((t) => {
      if (!audienceMatches(payload.aud, t.audience)) {
        misses.push({ trust_id: t.id, failed: 'aud' });
        return false;
      }
      const claim = failedClaim(JSON.parse(t.claims) as Record<string, string>, payload);
      if (claim !== null) misses.push({ trust_id: t.id, failed: `claim ${claim}` });
      return claim === null;
    });
    if (matching.length === 0) {
      throw new OidcRefusal('no trust matches the audience and claims', { iss, misses: misses.slice(0, 20) });
    }
    if (new Set(matching.map((t) => t.org_id)).size > 1) {
      throw new OidcRefusal(
        'the token matches trusts of several organizations; the caller must pass org_id (breeze login --oidc --org <org_id>, breeze run --oidc --org <org_id>)',
        {
          iss,
          trust_ids: matching.map((t) => t.id).slice(0, 20),
        },
      );
    }
    // several trusts of one organization: the oldest wins (stable, whatever order they match in)
    const trust = matching[0] as OidcTrustRow;
    const membership = await this.ctx.store.orgs.membership(trust.org_id, trust.created_by);
    if (!membership)
      throw new OidcRefusal("the trust's creator is no longer a member", { trust_id: trust.id });
    const scopes = capScopes(trust.scopes.split(' ') as Scope[], membership.role as Role);
    if (scopes.length === 0) {
      throw new OidcRefusal("the trust's creator's role leaves no scope", { trust_id: trust.id });
    }

    const tokenId = createHash('sha256').update(`${iss}\u0000${jti}`).digest('hex');
    // kept past `exp` by the tolerance (until then the token could still pass the expiry check),
    // and by a margin for the clocks of other instances, which prune by theirs
    const usedUntil = new Date((exp + OIDC_CLOCK_TOLERANCE_S + OIDC_TOKEN_USE_MARGIN_S) * 1000).toISOString();
    const minted = await this.ctx.store.transaction(async (tx) => {
      if (!(await tx.oidc.useToken(tokenId, usedUntil))) {
        throw new OidcRefusal('token already exchanged (jti replay)', { iss, trust_id: trust.id });
      }
      // the trust goes with its project: a deletion that committed (or is under way: the read
      // waits for it, see OrgsRepo.project) since the trust was read leaves nothing to mint in
      if (!(await tx.orgs.project(trust.project_id, true))) {
        throw new OidcRefusal("the trust's project was deleted", { iss, trust_id: trust.id });
      }
      // the trust itself was read before the (possibly slow) JWKS fetch: one deleted since then
      // mints nothing. After the project, in the order a project's deletion locks them.
      if (!(await tx.oidc.trust(trust.id, true))) {
        throw new OidcRefusal('the trust was deleted', { iss, trust_id: trust.id });
      }
      // no user acts here: the server mints on the trust's word (the CI identity is in the details)
      const by: AuditBy = { meta, actor: SYSTEM_ACTOR };
      const key = await this.ctx.keys.mint(
        {
          userId: trust.created_by,
          projectId: trust.project_id,
          name: keyName(payload, iss),
          scopes,
          // PLATFORM.md: expires_at is created_at + ttl_s (not counted from before the JWKS fetch)
          expiresAt: null,
          expiresInS: Number(trust.ttl_s),
          createdVia: 'oidc',
          by,
        },
        tx,
      );
      const trustClaims = JSON.parse(trust.claims) as Record<string, string>;
      await this.ctx.audit.record(tx, meta, {
        action: 'oidc.exchanged',
        orgId: trust.org_id,
        projectId: trust.project_id,
        actor: by.actor,
        target: { type: 'oidc_trust', id: trust.id, ownerId: trust.created_by },
        details: {
          issuer: iss,
          subject: typeof payload.sub === 'string' ? payload.sub.slice(0, 256) : null,
          // the token's values of the claims the trust checked (repository, ref, ...): who got the key
          claims: Object.fromEntries(
            Object.keys(trustClaims).map((k) => [k, String(payload[k]).slice(0, 256)]),
          ),
          key_id: key.row.id,
          prefix: key.row.prefix,
          expires_at: key.row.expires_at,
        },
      });
      return key;
    });
    // best effort: forget tokens that cannot pass the expiry check any more
    this.ctx.store.oidc.pruneTokenUses(now.toISOString()).catch(() => {});
    return { minted, trust };
  }
}

/** The log reason for a jose verification error (never its token). */
function joseReason(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'token expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return 'token not yet valid (nbf)';
    if (err.claim === 'iat') return 'token issued in the future (iat)';
    return `claim ${err.claim} invalid: ${err.reason}`;
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad signature';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (err instanceof joseErrors.JWTInvalid || err instanceof joseErrors.JWSInvalid) return 'malformed token';
  return `verification failed (${(err as { code?: string }).code ?? 'error'})`;
}
