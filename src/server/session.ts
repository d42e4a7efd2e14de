import type { FastifyReply, FastifyRequest } from 'fastify';
import { safeEqual } from '../core/hash.js';
import { randomToken, ulid } from '../core/ids.js';
import { PERSON_SCOPES } from './authz.js';
import type { ServerConfig } from './config.js';
import type { AuthContext, ServerContext } from './context.js';
import { requestMeta, userActor } from './services/audit.js';
import { SessionsRepo, type SessionWithUser } from './store/sessions.js';

const HOUR_MS = 3600_000;

/**
 * How long a browser stays signed in. On plain http a session cookie is not port-isolated (every
 * process listening on the same host may receive it), so it lives at most 24 hours there, and one
 * hour on the embedded server (it runs for one CLI command and its port changes every run anyway).
 */
export function sessionTtlMs(config: Pick<ServerConfig, 'publicUrl' | 'embedded'>): number {
  if (config.embedded) return HOUR_MS;
  return config.publicUrl.startsWith('https:') ? 7 * 24 * HOUR_MS : 24 * HOUR_MS;
}
/** Lifetime of the pre-sign-in CSRF cookie (the email and code forms). */
const FORM_COOKIE_TTL_S = 3600;

/** Parses a Cookie header; first occurrence of a name wins, malformed pairs are skipped. */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (name && !out.has(name)) out.set(name, value);
  }
  return out;
}

export interface CookieOptions {
  maxAgeS: number;
  secure: boolean;
}

function serialiseCookie(name: string, value: string, o: CookieOptions): string {
  const parts = [`${name}=${value}`, 'Path=/', `Max-Age=${o.maxAgeS}`, 'HttpOnly', 'SameSite=Lax'];
  if (o.secure) parts.push('Secure');
  return parts.join('; ');
}

function appendCookie(reply: FastifyReply, cookie: string): void {
  const prev = reply.getHeader('set-cookie');
  const list = prev === undefined ? [] : Array.isArray(prev) ? prev.map(String) : [String(prev)];
  reply.header('set-cookie', [...list, cookie]);
}

/** A signed-in browser, as the pages see it. */
export interface BrowserSession {
  id: string;
  user: { id: string; email: string };
  /** a per-session token for the pages' POST forms; a token of another session never matches */
  csrf: string;
  /** when the session ends (RFC 3339) */
  expiresAt: string;
}

/**
 * Browser sessions: a random token in an HttpOnly, SameSite=Lax cookie (`Secure`, and the
 * `__Host-` prefix, when the public URL is https); the database holds only its hash. CSRF tokens
 * are derived from the session token, so they need no storage and die with the session.
 *
 * A session is bound to the server that issued it: the stored hash covers the issuing origin (the
 * public URL) and is keyed by the server's secret (the pepper, where there is one), so a cookie that
 * another server minted —
 * another Breeze server, or `breeze serve` and the embedded server over one data directory, whose
 * cookies a browser sends to every port of 127.0.0.1 — matches no session here.
 */
export class Sessions {
  private readonly repo: SessionsRepo;

  constructor(private readonly ctx: ServerContext) {
    this.repo = new SessionsRepo(ctx.store.db);
  }

  get secure(): boolean {
    return this.ctx.config.publicUrl.startsWith('https:');
  }

  get cookieName(): string {
    return this.secure ? '__Host-breeze_session' : 'breeze_session';
  }

  get formCookieName(): string {
    return this.secure ? '__Host-breeze_form' : 'breeze_form';
  }

  /** The origin sessions are bound to; read per call, since `publicUrl` is only known after listen. */
  private get origin(): string {
    try {
      return new URL(this.ctx.config.publicUrl).origin;
    } catch {
      return this.ctx.config.publicUrl;
    }
  }

  private tokenHash(token: string): string {
    return this.ctx.hasher(`session:${this.origin}:${token}`);
  }

  private csrfFor(token: string): string {
    return this.ctx.hasher(`csrf:${token}`);
  }

  /** Starts a session for `userId`, records `user.signed_in` (same transaction), sets its cookie. */
  async create(reply: FastifyReply, userId: string): Promise<void> {
    const now = this.ctx.clock();
    const token = randomToken(32);
    const ttlMs = sessionTtlMs(this.ctx.config);
    const id = `ses_${ulid(now.getTime())}`;
    await this.ctx.store.transaction(async (tx) => {
      await new SessionsRepo(tx.db).insert({
        id,
        token_hash: this.tokenHash(token),
        user_id: userId,
        created_at: now.toISOString(),
        expires_at: new Date(now.getTime() + ttlMs).toISOString(),
      });
      const user = await tx.users.get(userId);
      if (!user) return;
      await this.ctx.audit.recordForUser(tx, requestMeta(reply.request), user, {
        action: 'user.signed_in',
        actor: userActor(user),
        target: { type: 'user', id: user.id, ownerId: user.id },
        details: { method: 'email_code', credential: 'browser_session' },
      });
    });
    // housekeeping off the request path; a failure only leaves dead rows behind
    this.repo.deleteExpired(now.toISOString()).catch(() => {});
    appendCookie(
      reply,
      serialiseCookie(this.cookieName, token, { maxAgeS: Math.floor(ttlMs / 1000), secure: this.secure }),
    );
  }

  /**
   * Uses the one-time token of a form this session was given (the create-key form carries one, so
   * a resubmitted POST, by reload or back and forward, creates no second key and never shows a
   * plaintext again); false when it was used already, on this instance or on another one. The
   * database keeps it until the session ends (then no form of it is accepted anyway).
   */
  async useFormToken(session: BrowserSession, token: string): Promise<boolean> {
    return this.repo.useFormToken(this.formTokenId(session, token), session.expiresAt);
  }

  /** Gives back a form token whose form made nothing (its action failed): it may be sent again. */
  async releaseFormToken(session: BrowserSession, token: string): Promise<void> {
    await this.repo.releaseFormToken(this.formTokenId(session, token));
  }

  private formTokenId(session: BrowserSession, token: string): string {
    return this.ctx.hasher(`form-token:${session.id}:${token}`);
  }

  private tokenOf(request: FastifyRequest): string | undefined {
    const token = parseCookies(request.headers.cookie).get(this.cookieName);
    // our tokens are 43 base64url characters; anything else is not worth a lookup
    return token && /^[A-Za-z0-9_-]{43}$/.test(token) ? token : undefined;
  }

  private async lookup(request: FastifyRequest): Promise<{ token: string; found: SessionWithUser } | null> {
    const token = this.tokenOf(request);
    if (!token) return null;
    const found = await this.repo.findLive(this.tokenHash(token), this.ctx.clock().toISOString());
    return found ? { token, found } : null;
  }

  /** The signed-in browser, or null. */
  async current(request: FastifyRequest): Promise<BrowserSession | null> {
    const hit = await this.lookup(request);
    if (!hit) return null;
    const { session, email } = hit.found;
    return {
      id: session.id,
      user: { id: session.user_id, email },
      csrf: this.csrfFor(hit.token),
      expiresAt: session.expires_at,
    };
  }

  /** Ends the session (if any) and clears its cookie. */
  async destroy(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const token = this.tokenOf(request);
    if (token) await this.repo.deleteByTokenHash(this.tokenHash(token));
    appendCookie(reply, serialiseCookie(this.cookieName, '', { maxAgeS: 0, secure: this.secure }));
  }

  /** True when `given` is the CSRF token of `session`. */
  checkCsrf(session: BrowserSession, given: string | undefined): boolean {
    return typeof given === 'string' && safeEqual(given, session.csrf);
  }

  /**
   * A token proving that this session went through a step (such as typing a login's user code on
   * the page), for the next form to echo. Bound to the session and to `purpose`: useless to anyone
   * else, and for anything else; it needs no storage and dies with the session.
   */
  proof(session: BrowserSession, purpose: string): string {
    return this.ctx.hasher(`proof:${purpose}:${session.csrf}`);
  }

  /** True when `given` is `proof(session, purpose)`. */
  checkProof(session: BrowserSession, purpose: string, given: string | undefined): boolean {
    return typeof given === 'string' && safeEqual(given, this.proof(session, purpose));
  }

  /**
   * The CSRF token for forms shown before sign-in (double submit: a random value in a cookie that
   * the form must echo). Sets the cookie when the browser has none yet.
   */
  formToken(request: FastifyRequest, reply: FastifyReply): string {
    const existing = parseCookies(request.headers.cookie).get(this.formCookieName);
    if (existing && /^[A-Za-z0-9_-]{32}$/.test(existing)) return existing;
    const token = randomToken(24);
    appendCookie(
      reply,
      serialiseCookie(this.formCookieName, token, { maxAgeS: FORM_COOKIE_TTL_S, secure: this.secure }),
    );
    return token;
  }

  /** True when a pre-sign-in form echoes the browser's form cookie. */
  checkFormToken(request: FastifyRequest, given: string | undefined): boolean {
    const cookie = parseCookies(request.headers.cookie).get(this.formCookieName);
    return !!cookie && typeof given === 'string' && safeEqual(given, cookie);
  }

  /**
   * The `session` authenticator of the auth plugin: a signed-in browser may call the JSON API
   * (`auth.type: "session"`), but only from a page of this origin, whatever the method. Anything
   * else that carries the cookie — curl, a process on another local port that received it, a page
   * of another site — is treated as unauthenticated: the cookie is ignored.
   */
  authenticator = async (request: FastifyRequest): Promise<AuthContext | null> => {
    const token = this.tokenOf(request);
    if (!token) return null;
    if (!this.isSameOriginBrowser(request)) return null;
    const found = await this.repo.findLive(this.tokenHash(token), this.ctx.clock().toISOString());
    if (!found) return null;
    return {
      type: 'session',
      user: { id: found.session.user_id, email: found.email },
      scopes: [...PERSON_SCOPES],
    };
  };

  /**
   * For the pages' form posts: false when the browser tells us the request was started by another
   * site or origin (another port of the same host included), or by an opaque origin.
   */
  isSameOrigin(request: FastifyRequest): boolean {
    const site = request.headers['sec-fetch-site'];
    if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') return false;
    const origin = request.headers.origin;
    // no Origin: not a browser, or an old one; SameSite=Lax and the CSRF tokens still hold
    if (origin === undefined) return true;
    return this.isOwnOrigin(request, origin);
  }

  /**
   * For the JSON API: true only for a request a browser marks as coming from a page of this origin
   * (`Sec-Fetch-Site: same-origin`, or, from a browser that sends no fetch metadata, an `Origin`
   * equal to ours). No header at all is not a browser page of ours.
   */
  isSameOriginBrowser(request: FastifyRequest): boolean {
    const site = request.headers['sec-fetch-site'];
    const origin = request.headers.origin;
    if (site !== undefined && site !== 'same-origin') return false;
    if (origin !== undefined) return this.isOwnOrigin(request, origin);
    return site === 'same-origin';
  }

  /** `origin` (an Origin header) is this server: its public URL, or the host the browser asked. */
  private isOwnOrigin(request: FastifyRequest, origin: string | string[]): boolean {
    if (typeof origin !== 'string' || origin === 'null') return false;
    let theirs: URL;
    try {
      theirs = new URL(origin);
    } catch {
      return false;
    }
    // a browser sends the Host of the URL it fetched, so Origin host == Host is same-origin
    if (theirs.host === request.headers.host) return true;
    return theirs.origin === this.origin;
  }
}
