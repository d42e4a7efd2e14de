import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../../core/errors.js';
import { type Role, SCOPES, type Scope } from '../../core/types.js';
import { capScopes, type OrgAccess } from '../authz.js';
import type { AuthContext, ServerContext } from '../context.js';
import { ApiKeyOps } from '../services/api-keys.js';
import { type AuditBy, byRequest } from '../services/audit.js';
import { OidcService } from '../services/oidc.js';
import type { OrgService } from '../services/orgs.js';
import type { WebhookService } from '../services/webhooks.js';
import { type BrowserSession, Sessions } from '../session.js';
import { DashboardRepo } from '../store/dashboard.js';
import { SessionsRepo } from '../store/sessions.js';
import { isPossibleId } from '../validation.js';
import { FlashCookie, field, fieldList } from './forms.js';
import { HIDE, rateLimit, seeOther } from './http.js';
import type { ScopeChoice } from './key-new-page.js';
import { dashboardCsp, type Flash, type Viewer } from './layout.js';
import { isSessionForm, sendPage } from './page-kit.js';
import { html, resultPage } from './views.js';

/**
 * What every dashboard page's routes share (sessions, CSRF, flash, the organization cookie, the
 * answers): built once by `dashboardRoutes` and handed to each page's `register…Routes`, so no page
 * has a second copy of a rule.
 */

export const PAGE_SIZE = 50;
const ORG_COOKIE = 'breeze_org';

/** A page action refused for a reason the user can act on (shown as a flash, never a 5xx). */
export class PageError extends Error {}

/** What a POST action asks for: where to go next (else back), and what to say there. */
export type ActionResult = { to?: string; flash?: Flash } | undefined;

/** The params of every `/orgs/:org_id/…` action. */
export type OrgPost = {
  Params: {
    org_id: string;
    user_id?: string;
    invitation_id?: string;
    project_id?: string;
    webhook_id?: string;
    trust_id?: string;
  };
};

/** The route options of every `/orgs/:org_id/…` action. */
export const orgPost = { schema: HIDE, config: rateLimit(30) };

/** A dashboard page: HTML under the dashboard's CSP. */
export function send(reply: FastifyReply, status: number, page: string): FastifyReply {
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('content-security-policy', dashboardCsp())
    .send(page);
}

/** A refusal page (the sign-in pages' card, so their CSP), with the way back. */
export function sendError(reply: FastifyReply, status: number, title: string, message: string): FastifyReply {
  return sendPage(
    reply,
    status,
    resultPage(
      status >= 500 ? 'bad' : 'warn',
      title,
      message,
      html`<a class="button secondary" href="/keys">Back to the dashboard</a>`,
    ),
  );
}

/** The caller a page's services see: the signed-in user (what they may do is their role's, authz.ts). */
export function authOf(session: BrowserSession): AuthContext {
  return { type: 'session', user: session.user, scopes: [...SCOPES] };
}

/** Who acts, from where: the audit event of a page's write, as `byRequest` is the API's. */
export function pageBy(request: FastifyRequest, session: BrowserSession): AuditBy {
  return byRequest(request, authOf(session));
}

/** The message of a refusal the user can act on (a PageError, a 4xx of a service), else null. */
export function refusal(err: unknown): string | null {
  if (err instanceof PageError) return err.message;
  if (err instanceof HttpError && err.statusCode >= 400 && err.statusCode < 500) return err.message;
  return null;
}

/** Every scope, with whether the role may give it (authz.ts's caps) and whether it is ticked. */
export function scopeChoices(role: Role, checked: readonly Scope[]): ScopeChoice[] {
  const allowed = capScopes(SCOPES, role);
  return SCOPES.map((scope) => ({
    scope,
    allowed: allowed.includes(scope),
    checked: checked.includes(scope),
  }));
}

/** The scopes ticked in a form; a PageError when none or an unknown one. */
export function scopesFrom(body: unknown): Scope[] {
  const picked = fieldList(body, 'scopes');
  const scopes = SCOPES.filter((s) => picked.includes(s));
  if (scopes.length === 0) throw new PageError('Pick at least one scope.');
  if (picked.some((p) => !(SCOPES as readonly string[]).includes(p))) throw new PageError('Unknown scope.');
  return scopes;
}

/** The services and per-request plumbing of the signed-in pages, one per dashboard registration. */
export class DashboardKit {
  readonly ctx: ServerContext;
  readonly sessions: Sessions;
  readonly ops: ApiKeyOps;
  readonly orgs: OrgService;
  readonly sessionRepo: SessionsRepo;
  readonly queries: DashboardRepo;
  readonly flash: FlashCookie;
  readonly oidc: OidcService;
  readonly #app: FastifyInstance;

  constructor(app: FastifyInstance) {
    this.#app = app;
    this.ctx = app.breeze;
    this.sessions = new Sessions(this.ctx);
    this.ops = new ApiKeyOps(this.ctx);
    this.orgs = this.ops.orgs;
    this.sessionRepo = new SessionsRepo(this.ctx.store.db);
    this.queries = new DashboardRepo(this.ctx.store.db);
    this.flash = new FlashCookie(this.sessions);
    this.oidc = new OidcService(this.ctx);
  }

  /** The app's webhook service (its delivery worker is the app's, so shared, not built here). */
  webhooks(): WebhookService {
    return this.#app.breezeWebhooks;
  }

  /** The signed-in browser, or a redirect to sign in (and back here afterwards). */
  async signedIn(request: FastifyRequest, reply: FastifyReply): Promise<BrowserSession | null> {
    const session = await this.sessions.current(request);
    if (session) return session;
    const next = request.method === 'GET' ? request.url : '/keys';
    await seeOther(reply, `/login?next=${encodeURIComponent(next.length <= 500 ? next : '/keys')}`);
    return null;
  }

  /** A POST of a page of ours: signed in, same origin, the session's CSRF token. */
  async formSession(request: FastifyRequest, reply: FastifyReply): Promise<BrowserSession | null> {
    const session = await this.signedIn(request, reply);
    if (!session) return null;
    if (isSessionForm(this.sessions, request, session)) return session;
    await sendError(reply, 403, 'This form expired', 'Go back, reload the page and try again.');
    return null;
  }

  /** The organization a page without one in its URL is about: the last one picked, else the personal one. */
  async currentOrg(request: FastifyRequest, auth: AuthContext, asked?: string): Promise<OrgAccess> {
    if (asked !== undefined && asked !== '') {
      if (!isPossibleId(asked)) throw new HttpError('NOT_FOUND', 'No such organization.');
      return this.orgs.access(auth, asked);
    }
    const remembered = request.headers.cookie
      ?.split(';')
      .map((c) => c.trim())
      .find((c) => c.startsWith(`${ORG_COOKIE}=`))
      ?.slice(ORG_COOKIE.length + 1);
    if (remembered && isPossibleId(remembered)) {
      const access = await this.orgs.access(auth, remembered).catch(() => null);
      if (access) return access;
    }
    return this.orgs.defaultAccess(auth);
  }

  /**
   * A GET page about one organization, named by `?org_id=` (then remembered) or else the current
   * one: the signed-in session, its caller and that organization; null once answered (sign in).
   */
  async orgPage(
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<{ session: BrowserSession; auth: AuthContext; access: OrgAccess } | null> {
    const session = await this.signedIn(request, reply);
    if (!session) return null;
    const auth = authOf(session);
    const asked = field(request.query, 'org_id');
    const access = await this.currentOrg(request, auth, asked);
    if (asked) this.rememberOrg(reply, access.orgId);
    return { session, auth, access };
  }

  /** Remembers the organization picked, for the pages without one in their URL. */
  rememberOrg(reply: FastifyReply, orgId: string): void {
    const prev = reply.getHeader('set-cookie');
    const list = prev === undefined ? [] : Array.isArray(prev) ? prev.map(String) : [String(prev)];
    const cookie = [`${ORG_COOKIE}=${orgId}`, 'Path=/', 'Max-Age=31536000', 'SameSite=Lax', 'HttpOnly']
      .concat(this.sessions.secure ? ['Secure'] : [])
      .join('; ');
    reply.header('set-cookie', [...list, cookie]);
  }

  /** Who looks at a page: the layout's header (organization switcher, CSRF token, flash). */
  async viewer(
    request: FastifyRequest,
    reply: FastifyReply,
    session: BrowserSession,
    orgId: string,
  ): Promise<Viewer> {
    return {
      email: session.user.email,
      csrf: session.csrf,
      orgs: await this.orgs.list(authOf(session)),
      orgId,
      flash: this.flash.take(request, reply, session),
    };
  }

  /** Runs a POST action of `session`; a refusal (4xx of a service, or PageError) becomes a flash on `back`. */
  async act(
    reply: FastifyReply,
    session: BrowserSession,
    back: string,
    fn: () => Promise<ActionResult>,
    opts: { notFoundIsPage?: boolean } = {},
  ): Promise<FastifyReply> {
    try {
      const done = await fn();
      if (done?.flash) this.flash.set(reply, session, done.flash);
      return seeOther(reply, done?.to ?? back);
    } catch (err) {
      // the resource the URL names is not the caller's (or does not exist): the page's 404, as GET
      // answers, rather than a redirect to a page that would 404
      if (opts.notFoundIsPage && err instanceof HttpError && err.code === 'NOT_FOUND') throw err;
      const message = refusal(err);
      if (message === null) throw err;
      this.flash.set(reply, session, { kind: 'error', text: message });
      return seeOther(reply, back);
    }
  }

  /** A form POST under `/orgs/:org_id/`: the caller's access to that organization, then `act`. */
  async orgAction(
    request: FastifyRequest<OrgPost>,
    reply: FastifyReply,
    fn: (access: OrgAccess, auth: AuthContext) => Promise<ActionResult>,
  ): Promise<FastifyReply> {
    const session = await this.formSession(request, reply);
    if (!session) return reply;
    const auth = authOf(session);
    const base = `/orgs/${request.params.org_id}`;
    // an organization that is not the caller's: 404 (before anything else), as its page answers
    const access = await this.orgs.access(auth, request.params.org_id);
    return this.act(reply, session, base, async () => fn(access, auth));
  }
}
