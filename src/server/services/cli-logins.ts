import { randomString } from '../../core/base62.js';
import { HttpError } from '../../core/errors.js';
import { pkceChallenge, safeEqual } from '../../core/hash.js';
import { randomToken } from '../../core/ids.js';
import type { CliLoginExchangeResult, CliLoginRequest, CliLoginStart, Scope } from '../../core/types.js';
import { normaliseScopes } from '../../core/types.js';
import type { ServerContext } from '../context.js';
import { scopesOf, toKeyInfo } from '../store/keys.js';
import { type LoginRow, LoginsRepo } from '../store/logins.js';
import { type RequestMeta, SYSTEM_META, userActor } from './audit.js';

/** RFC 8628 §6.1: no vowels (no words), no look-alikes. */
export const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';
export const USER_CODE_LENGTH = 8;
export const LOGIN_TTL_S = 600;
/** Seconds a polling client waits between exchanges. */
export const POLL_INTERVAL_S = 1;
/**
 * How much earlier than `interval` a poll may arrive and still count as on time. A client polling
 * on a timer (RFC 8628 §3.5) sends its requests exactly `interval` apart, and network or event-loop
 * jitter lands some a few milliseconds early; answering those SLOW_DOWN would punish a well-behaved
 * client every other poll. A real "too fast" (right after another poll, or at half the interval)
 * is still caught.
 */
export const POLL_JITTER_MS = 100;
/** Expired logins are kept this long so their page can still say "expired" rather than "unknown". */
const KEEP_EXPIRED_MS = 24 * 3600_000;
const DEFAULT_SCOPES: Scope[] = ['read', 'write', 'admin'];

/** `BCDFGHJK` -> `BCDF-GHJK` */
export function formatUserCode(code: string): string {
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

/** What a person typed -> the canonical 8 letters, or null when it cannot be a user code. */
export function normaliseUserCode(input: string): string | null {
  const code = input.replace(/[\s-]/g, '').toUpperCase();
  if (code.length !== USER_CODE_LENGTH) return null;
  for (const c of code) if (!USER_CODE_ALPHABET.includes(c)) return null;
  return code;
}

/**
 * True for the loopback redirect targets RFC 8252 §7.3 allows: `http://127.0.0.1:<port>/...` or
 * `http://[::1]:<port>/...` with an explicit port and no credentials or fragment. `localhost` is
 * refused: it may resolve elsewhere.
 */
export function parseLoopbackRedirect(value: string): URL | null {
  if (!/^http:\/\/(127\.0\.0\.1|\[::1\]):[0-9]{1,5}(\/[^\s#\\]*)?$/.test(value)) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' || (url.hostname !== '127.0.0.1' && url.hostname !== '[::1]')) return null;
  if (url.username || url.password || url.hash) return null;
  const port = Number(url.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  return url;
}

const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;

function invalidGrant(message: string): HttpError {
  return new HttpError('INVALID_GRANT', message);
}

export type LookupResult =
  | { kind: 'unknown' }
  | { kind: 'expired'; login: LoginRow }
  | { kind: 'live'; login: LoginRow };

/**
 * CLI logins (API.md "CLI login"): created by the CLI, approved or denied by a signed-in browser,
 * exchanged once by the CLI that holds the PKCE verifier (and, with a loopback redirect, the code
 * the browser delivered to it).
 */
export class CliLoginService {
  readonly repo: LoginsRepo;

  constructor(private readonly ctx: ServerContext) {
    this.repo = new LoginsRepo(ctx.store.db);
  }

  private userCodeHash(code: string): string {
    return this.ctx.hasher(`user-code:${code}`);
  }

  private approvalCodeHash(loginId: string, code: string): string {
    return this.ctx.hasher(`approval-code:${loginId}:${code}`);
  }

  async create(input: CliLoginRequest, requesterIp: string): Promise<CliLoginStart> {
    const now = this.ctx.clock();
    let redirect: string | null = null;
    if (input.redirect_uri !== undefined) {
      const url = parseLoopbackRedirect(input.redirect_uri);
      if (!url) {
        throw new HttpError(
          'VALIDATION_FAILED',
          'redirect_uri must be a loopback URL: http://127.0.0.1:<port>/... or http://[::1]:<port>/...',
          { details: [{ field: 'body.redirect_uri', message: 'is not a loopback http URL with a port' }] },
        );
      }
      redirect = url.href;
    }
    this.repo.deleteExpired(new Date(now.getTime() - KEEP_EXPIRED_MS).toISOString()).catch(() => {});
    const id = `login_${randomToken(24)}`;
    for (let attempt = 0; attempt < 5; attempt++) {
      const code = randomString(USER_CODE_LENGTH, USER_CODE_ALPHABET);
      const inserted = await this.repo.insert({
        id,
        user_code_hash: this.userCodeHash(code),
        code_challenge: input.code_challenge,
        client_name: input.client_name.trim(),
        project_id: null,
        hostname: input.hostname.trim(),
        key_name: input.key_name?.trim() || null,
        scopes: normaliseScopes(input.scopes ?? DEFAULT_SCOPES).join(' '),
        redirect_uri: redirect,
        state: input.state ?? null,
        requester_ip: requesterIp,
        status: 'pending',
        user_id: null,
        approval_code_hash: null,
        interval_s: POLL_INTERVAL_S,
        created_at: now.toISOString(),
        expires_at: new Date(now.getTime() + LOGIN_TTL_S * 1000).toISOString(),
        last_poll_at: null,
        decided_at: null,
      });
      if (!inserted) continue;
      const base = this.ctx.config.publicUrl.replace(/\/+$/, '');
      const shown = formatUserCode(code);
      return {
        login_id: id,
        user_code: shown,
        verification_uri: `${base}/device`,
        verification_uri_complete: `${base}/device?user_code=${shown}`,
        expires_in: LOGIN_TTL_S,
        interval: POLL_INTERVAL_S,
      };
    }
    throw new Error('could not find a free user code');
  }

  /** The login a typed (or linked) user code names. */
  async lookup(userCode: string): Promise<LookupResult> {
    const code = normaliseUserCode(userCode);
    if (!code) return { kind: 'unknown' };
    const login = await this.repo.findByUserCodeHash(this.userCodeHash(code));
    if (!login) return { kind: 'unknown' };
    if (login.expires_at <= this.ctx.clock().toISOString()) return { kind: 'expired', login };
    return { kind: 'live', login };
  }

  /**
   * Approves a pending login for `userId`. Returns where to send the browser: the loopback
   * redirect with a fresh one-time code, or null when the CLI polls. False when it was already
   * decided or expired.
   */
  async approve(
    login: LoginRow,
    userId: string,
    projectId?: string,
    meta: RequestMeta = SYSTEM_META,
  ): Promise<{ redirect: string | null } | false> {
    const code = login.redirect_uri ? randomToken(32) : null;
    const ok = await this.decide(
      login,
      {
        status: 'approved',
        userId,
        approvalCodeHash: code ? this.approvalCodeHash(login.id, code) : null,
        projectId: projectId ?? null,
      },
      meta,
    );
    if (!ok) return false;
    if (!login.redirect_uri || !code) return { redirect: null };
    const url = new URL(login.redirect_uri);
    url.searchParams.set('code', code);
    if (login.state !== null) url.searchParams.set('state', login.state);
    return { redirect: url.href };
  }

  /** Denies a pending login; returns the loopback URL to tell the CLI at once (or null). */
  async deny(
    login: LoginRow,
    userId: string,
    meta: RequestMeta = SYSTEM_META,
  ): Promise<{ redirect: string | null } | false> {
    const ok = await this.decide(login, { status: 'denied', userId, approvalCodeHash: null }, meta);
    if (!ok) return false;
    if (!login.redirect_uri) return { redirect: null };
    const url = new URL(login.redirect_uri);
    url.searchParams.set('error', 'access_denied');
    if (login.state !== null) url.searchParams.set('state', login.state);
    return { redirect: url.href };
  }

  /** The decision and its audit event (`cli_login.approved`/`denied`), in one transaction. */
  private async decide(
    login: LoginRow,
    decision: Parameters<LoginsRepo['decide']>[1],
    meta: RequestMeta,
  ): Promise<boolean> {
    return this.ctx.store.transaction(async (tx) => {
      if (!(await new LoginsRepo(tx.db).decide(login.id, decision, this.ctx.clock()))) return false;
      const user = await tx.users.get(decision.userId);
      if (!user) return true;
      await this.ctx.audit.recordForUser(tx, meta, user, {
        action: decision.status === 'approved' ? 'cli_login.approved' : 'cli_login.denied',
        projectId: decision.projectId ?? null,
        actor: userActor(user),
        target: { type: 'cli_login', id: login.id, ownerId: user.id },
        details: loginDetails(login),
      });
      return true;
    });
  }

  /**
   * The exchange. Checks, in this order: the verifier (a caller without it learns nothing, not even
   * the state), replay, expiry, the decision (polling speed while pending), the loopback code; then flips
   * approved -> exchanged with a conditional UPDATE inside the transaction that mints the key, so
   * of two concurrent exchanges exactly one gets a key.
   */
  async exchange(
    loginId: string,
    verifier: string,
    code: string | undefined,
    meta: RequestMeta = SYSTEM_META,
  ): Promise<CliLoginExchangeResult & { login: LoginRow }> {
    const login = await this.repo.get(loginId);
    if (!login) throw invalidGrant('Unknown login.');
    if (!VERIFIER.test(verifier) || !safeEqual(pkceChallenge(verifier), login.code_challenge)) {
      throw invalidGrant('The code_verifier does not match this login.');
    }
    if (login.status === 'exchanged') throw invalidGrant('This login was already exchanged for a key.');
    const now = this.ctx.clock();
    if (login.expires_at <= now.toISOString()) {
      throw new HttpError('EXPIRED_TOKEN', 'This login expired: run "breeze login" again.');
    }
    if (login.status === 'pending') {
      // RFC 8628 §3.5: slow_down is a variant of authorization_pending, so only waiting logins
      // are paced; a decided one answers at once
      if (!(await this.repo.recordPoll(login.id, now, POLL_JITTER_MS))) {
        throw new HttpError('SLOW_DOWN', `Polling too fast: wait ${login.interval_s} s between exchanges.`, {
          details: { interval: login.interval_s },
        });
      }
      throw new HttpError('AUTHORIZATION_PENDING', 'Not approved yet: waiting for the browser.');
    }
    if (login.status === 'denied')
      throw new HttpError('ACCESS_DENIED', 'The login was denied in the browser.');
    if (login.redirect_uri) {
      if (code === undefined || login.approval_code_hash === null) {
        throw invalidGrant('This login needs the code the browser delivered to the loopback redirect.');
      }
      if (!safeEqual(this.approvalCodeHash(login.id, code), login.approval_code_hash)) {
        throw invalidGrant('Wrong loopback code.');
      }
    }
    const userId = login.user_id;
    if (!userId) throw invalidGrant('This login has no approver.');
    const result = await this.ctx.store.transaction(async (tx) => {
      const txRepo = new LoginsRepo(tx.db);
      if (!(await txRepo.markExchanged(login.id, now))) return null;
      const user = await tx.users.get(userId);
      if (!user) return null;
      // the picked project, if the approver still belongs to its organization; else personal `default`
      // (read locked: a project being deleted meanwhile is found gone, not minted in)
      const picked = login.project_id ? await tx.orgs.project(login.project_id, true) : undefined;
      const stillMember = picked ? await tx.orgs.membership(picked.org_id, userId) : undefined;
      const by = { meta, actor: userActor(user) };
      const minted = await this.ctx.keys.mint(
        {
          userId,
          ...(picked && stillMember ? { projectId: picked.id } : {}),
          name: login.key_name ?? `${login.hostname} (breeze login)`,
          scopes: scopesOf(login),
          expiresAt: null,
          createdVia: 'cli_login',
          by,
        },
        tx,
      );
      await this.ctx.audit.recordForUser(tx, meta, user, {
        action: 'cli_login.exchanged',
        projectId: minted.row.project_id,
        actor: by.actor,
        target: { type: 'cli_login', id: login.id, ownerId: user.id },
        details: { ...loginDetails(login), key_id: minted.row.id, prefix: minted.row.prefix },
      });
      return { minted, user };
    });
    if (!result) throw invalidGrant('This login was already exchanged for a key.');
    return {
      api_key: result.minted.apiKey,
      key: toKeyInfo(result.minted.row, now),
      user: { id: result.user.id, email: result.user.email },
      login,
    };
  }
}

/** What an audit event says about a CLI login (no code, verifier or challenge). */
function loginDetails(login: LoginRow): Record<string, unknown> {
  return {
    client_name: login.client_name,
    hostname: login.hostname,
    requester_ip: login.requester_ip,
    scopes: scopesOf(login),
    mode: login.redirect_uri ? 'browser' : 'device',
  };
}
