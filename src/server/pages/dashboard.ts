import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../../core/errors.js';
import { randomToken } from '../../core/ids.js';
import { type KeyStatus, ROLES, type Role, SCOPES, type Scope } from '../../core/types.js';
import { auditScope, capScopes, isAllowed, type OrgAccess } from '../authz.js';
import type { AuthContext } from '../context.js';
import { ApiKeyOps } from '../services/api-keys.js';
import { AUDIT_ACTIONS, type AuditBy, byRequest, requestMeta } from '../services/audit.js';
import { readAuditLog } from '../services/audit-log.js';
import { CLAIM_NAME_PATTERN, OidcService } from '../services/oidc.js';
import { requestsLast24h } from '../services/usage.js';
import { WEBHOOK_EVENTS } from '../services/webhooks.js';
import { type BrowserSession, Sessions } from '../session.js';
import { DashboardRepo } from '../store/dashboard.js';
import { scopesOf } from '../store/keys.js';
import { SessionsRepo } from '../store/sessions.js';
import { isPossibleId, isValidEmail } from '../validation.js';
import { accountPage } from './account-page.js';
import { DASHBOARD_JS, DASHBOARD_JS_ETAG } from './assets.js';
import { type AuditFilters, auditPage, keyEventsSection, SINCE_CHOICES } from './audit-page.js';
import { FlashCookie, field, fieldList, OnceTokens, textInput } from './forms.js';
import { createdKeyPage, EXPIRY_CHOICES, newKeyPage, type ScopeChoice } from './key-new-page.js';
import { deleteConfirmPage, GRACE_CHOICES, keyPage, rotatedKeyPage } from './key-page.js';
import { keysPage, STATUS_FILTERS } from './keys-page.js';
import { dashboardCsp, type Flash, SCRIPT_PATH, type Viewer } from './layout.js';
import { orgPage } from './org-page.js';
import { leakPolicySection, oidcSection, TRUST_TTL_CHOICES, webhooksSection } from './org-platform.js';
import { type UsageRange, usageSection, usageSeries } from './usage-chart.js';
import { html, pageCsp, resultPage } from './views.js';

const HIDE = { hide: true } as const;
const PAGE_SIZE = 50;
const ORG_COOKIE = 'breeze_org';

/** A page action refused for a reason the user can act on (shown as a flash, never a 5xx). */
class PageError extends Error {}

/**
 * The signed-in dashboard (PLATFORM.md "Dashboard"): `/keys`, `/keys/new`, `/keys/:key_id`,
 * `/account`, `/orgs/:org_id`. Registered inside `pageRoutes`, so it shares their hooks (no-store,
 * frame denial, form bodies) and rate limits. Every action is a form POST with the session's CSRF
 * token, answered by a redirect and a flash (POST-redirect-GET), except the two that show a
 * plaintext key once (create, rotate): their POST renders it and nothing can render it again.
 * Every decision is the services' (ApiKeyOps, OrgService) and so authz.ts's: no second rule set.
 */
export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  const ctx = app.breeze;
  const sessions = new Sessions(ctx);
  const ops = new ApiKeyOps(ctx);
  const orgs = ops.orgs;
  const sessionRepo = new SessionsRepo(ctx.store.db);
  const queries = new DashboardRepo(ctx.store.db);
  const flash = new FlashCookie(ctx, () => sessions.secure);
  const onceTokens = new OnceTokens();
  const oidc = new OidcService(ctx);
  const webhooks = () => app.breezeWebhooks;
  const rateLimit = (max: number) => ({ rateLimit: { max, timeWindow: 60_000 } });

  function send(reply: FastifyReply, status: number, page: string): FastifyReply {
    return reply
      .code(status)
      .type('text/html; charset=utf-8')
      .header('content-security-policy', dashboardCsp())
      .send(page);
  }

  function seeOther(reply: FastifyReply, location: string): FastifyReply {
    return reply.code(303).header('location', location).send();
  }

  function authOf(session: BrowserSession): AuthContext {
    return { type: 'session', user: session.user, scopes: [...SCOPES] };
  }

  /** Who acts, from where: the audit event of a page's write, as `byRequest` is the API's. */
  function pageBy(request: FastifyRequest, session: BrowserSession): AuditBy {
    return byRequest(request, authOf(session));
  }

  /** The signed-in browser, or a redirect to sign in (and back here afterwards). */
  async function signedIn(request: FastifyRequest, reply: FastifyReply): Promise<BrowserSession | null> {
    const session = await sessions.current(request);
    if (session) return session;
    const next = request.method === 'GET' ? request.url : '/keys';
    await seeOther(reply, `/login?next=${encodeURIComponent(next.length <= 500 ? next : '/keys')}`);
    return null;
  }

  /** A POST of a page of ours: signed in, same origin, the session's CSRF token. */
  async function formSession(request: FastifyRequest, reply: FastifyReply): Promise<BrowserSession | null> {
    const session = await signedIn(request, reply);
    if (!session) return null;
    if (sessions.isSameOrigin(request) && sessions.checkCsrf(session, field(request.body, 'csrf'))) {
      return session;
    }
    await sendError(reply, 403, 'This form expired', 'Go back, reload the page and try again.');
    return null;
  }

  /** A refusal page (the sign-in pages' card, so their CSP), with the way back. */
  function sendError(reply: FastifyReply, status: number, title: string, message: string): FastifyReply {
    return reply
      .code(status)
      .type('text/html; charset=utf-8')
      .header('content-security-policy', pageCsp())
      .send(
        resultPage(
          status >= 500 ? 'bad' : 'warn',
          title,
          message,
          html`<a class="button secondary" href="/keys">Back to the dashboard</a>`,
        ),
      );
  }

  /** The organization a page without one in its URL is about: the last one picked, else the personal one. */
  async function currentOrg(request: FastifyRequest, auth: AuthContext, asked?: string): Promise<OrgAccess> {
    if (asked !== undefined && asked !== '') {
      if (!isPossibleId(asked)) throw new HttpError('NOT_FOUND', 'No such organization.');
      return orgs.access(auth, asked);
    }
    const remembered = request.headers.cookie
      ?.split(';')
      .map((c) => c.trim())
      .find((c) => c.startsWith(`${ORG_COOKIE}=`))
      ?.slice(ORG_COOKIE.length + 1);
    if (remembered && isPossibleId(remembered)) {
      const access = await orgs.access(auth, remembered).catch(() => null);
      if (access) return access;
    }
    return orgs.defaultAccess(auth);
  }

  function rememberOrg(reply: FastifyReply, orgId: string): void {
    const prev = reply.getHeader('set-cookie');
    const list = prev === undefined ? [] : Array.isArray(prev) ? prev.map(String) : [String(prev)];
    const cookie = [`${ORG_COOKIE}=${orgId}`, 'Path=/', 'Max-Age=31536000', 'SameSite=Lax', 'HttpOnly']
      .concat(sessions.secure ? ['Secure'] : [])
      .join('; ');
    reply.header('set-cookie', [...list, cookie]);
  }

  async function viewer(
    request: FastifyRequest,
    reply: FastifyReply,
    session: BrowserSession,
    orgId: string,
  ): Promise<Viewer> {
    return {
      email: session.user.email,
      csrf: session.csrf,
      orgs: await orgs.list(authOf(session)),
      orgId,
      flash: flash.take(request, reply),
    };
  }

  /** Runs a POST action; a refusal (4xx of a service, or PageError) becomes a flash on `back`. */
  async function act(
    reply: FastifyReply,
    back: string,
    fn: () => Promise<{ to?: string; flash?: Flash } | undefined>,
  ): Promise<FastifyReply> {
    try {
      const done = await fn();
      if (done?.flash) flash.set(reply, done.flash);
      return seeOther(reply, done?.to ?? back);
    } catch (err) {
      const message = refusal(err);
      if (message === null) throw err;
      flash.set(reply, { kind: 'error', text: message });
      return seeOther(reply, back);
    }
  }

  function refusal(err: unknown): string | null {
    if (err instanceof PageError) return err.message;
    if (err instanceof HttpError && err.statusCode >= 400 && err.statusCode < 500) return err.message;
    return null;
  }

  function scopeChoices(role: Role, checked: readonly Scope[]): ScopeChoice[] {
    const allowed = capScopes(SCOPES, role);
    return SCOPES.map((scope) => ({
      scope,
      allowed: allowed.includes(scope),
      checked: checked.includes(scope),
    }));
  }

  function scopesFrom(body: unknown): Scope[] {
    const picked = fieldList(body, 'scopes');
    const scopes = SCOPES.filter((s) => picked.includes(s));
    if (scopes.length === 0) throw new PageError('Pick at least one scope.');
    if (picked.some((p) => !(SCOPES as readonly string[]).includes(p))) throw new PageError('Unknown scope.');
    return scopes;
  }

  // pages answer errors as pages: a refusal is a 4xx page, never the JSON error shape or a 5xx
  app.setErrorHandler((err: FastifyError | HttpError, request, reply) => {
    const status = err.statusCode ?? 500;
    if (err instanceof HttpError && err.headers) reply.headers(err.headers);
    if (status === 404) {
      return sendError(reply, 404, 'Not found', 'There is nothing here, or it is not yours to see.');
    }
    if (status === 429) return sendError(reply, 429, 'Too many requests', 'Wait a minute, then try again.');
    if (status >= 400 && status < 500) {
      // API messages of our own services only: they never carry a secret
      const message = err instanceof HttpError ? err.message : 'The request could not be understood.';
      return sendError(reply, status, 'That did not work', message);
    }
    request.log.error({ err }, 'dashboard error');
    return sendError(reply, 500, 'Something went wrong', 'Please try again in a moment.');
  });

  // ---- entry and assets ----------------------------------------------------------------------

  app.get('/', { schema: HIDE }, async (request, reply) => {
    return seeOther(reply, (await sessions.current(request)) ? '/keys' : '/login?next=%2Fkeys');
  });

  app.get(SCRIPT_PATH, { schema: HIDE }, async (request, reply) => {
    reply.header('etag', DASHBOARD_JS_ETAG);
    if (request.headers['if-none-match'] === DASHBOARD_JS_ETAG) return reply.code(304).send();
    return reply.type('text/javascript; charset=utf-8').send(DASHBOARD_JS);
  });

  // ---- audit log ------------------------------------------------------------------------------

  app.get('/audit', { schema: HIDE }, async (request, reply) => {
    const session = await signedIn(request, reply);
    if (!session) return reply;
    const auth = authOf(session);
    const q = request.query;
    const access = await currentOrg(request, auth, field(q, 'org_id'));
    if (field(q, 'org_id')) rememberOrg(reply, access.orgId);
    // only values the page offers (or a well-formed id) reach the service; others are said plainly
    const problems: string[] = [];
    const filters: AuditFilters = {};
    const action = field(q, 'action') || undefined;
    if (action) {
      if ((AUDIT_ACTIONS as readonly string[]).includes(action)) filters.action = action;
      else problems.push('That action is not one the log records; showing every action.');
    }
    const keyId = (field(q, 'key_id') ?? '').trim() || undefined;
    if (keyId) {
      if (/^key_[0-9A-Z]{26}$/.test(keyId)) filters.keyId = keyId;
      else
        problems.push('A key id looks like key_ followed by 26 letters and digits; the key filter is off.');
    }
    const actorId = field(q, 'actor_id') || undefined;
    if (actorId) {
      if (isPossibleId(actorId)) filters.actorId = actorId;
      else problems.push('Unknown actor; showing everyone.');
    }
    const since = field(q, 'since') || undefined;
    if (since) {
      if (SINCE_CHOICES.some((c) => c.value === since)) filters.since = since;
      else problems.push('Pick a time range from the list; showing any time.');
    }
    const cursor = field(q, 'cursor') || undefined;
    const read = (c?: string) =>
      readAuditLog(ctx, orgs, auth, {
        org_id: access.orgId,
        ...(filters.action ? { action: filters.action } : {}),
        ...(filters.keyId ? { key_id: filters.keyId } : {}),
        ...(filters.actorId ? { actor_id: filters.actorId } : {}),
        ...(filters.since ? { since: filters.since } : {}),
        limit: PAGE_SIZE,
        ...(c ? { cursor: c } : {}),
      });
    const log = await read(cursor).catch((err: unknown) => {
      // a cursor not of ours: the newest page
      if (err instanceof HttpError && err.code === 'VALIDATION_FAILED') return null;
      throw err;
    });
    const page = log ?? (await read());
    const [org, members] = await Promise.all([orgs.get(access.orgId), orgs.members(access)]);
    const whole = auditScope(access) === 'all';
    return send(
      reply,
      problems.length > 0 ? 400 : 200,
      auditPage({
        viewer: await viewer(request, reply, session, access.orgId),
        orgName: org.name,
        whole,
        actions: AUDIT_ACTIONS,
        members: whole ? members : members.filter((m) => m.user_id === auth.user.id),
        filters,
        events: page.events,
        nextCursor: page.nextCursor,
        paged: log !== null && cursor !== undefined,
        ...(problems.length > 0 ? { problem: problems.join(' ') } : {}),
        now: ctx.clock(),
      }),
    );
  });

  // ---- keys -----------------------------------------------------------------------------------

  app.get('/keys', { schema: HIDE }, async (request, reply) => {
    const session = await signedIn(request, reply);
    if (!session) return reply;
    const auth = authOf(session);
    const q = request.query;
    const access = await currentOrg(request, auth, field(q, 'org_id'));
    if (field(q, 'org_id')) rememberOrg(reply, access.orgId);
    const projects = await orgs.projects(access);
    const askedProject = field(q, 'project_id') || undefined;
    const projectId = projects.find((p) => p.id === askedProject)?.id;
    const askedStatus = field(q, 'status');
    const status = STATUS_FILTERS.find((s) => s === askedStatus) as KeyStatus | undefined;
    const cursor = field(q, 'cursor') || undefined;
    const org = await orgs.get(access.orgId);
    const list = await ops
      .list(auth, { limit: PAGE_SIZE, org_id: access.orgId, project_id: projectId, status, cursor })
      .catch((err: unknown) => {
        // a cursor not of ours: the first page
        if (err instanceof HttpError && err.code === 'VALIDATION_FAILED') return null;
        throw err;
      });
    if (!list) return seeOther(reply, `/keys?org_id=${access.orgId}`);
    const requests24h = await requestsLast24h(
      app,
      list.rows.map((r) => r.id),
    );
    return send(
      reply,
      200,
      keysPage({
        viewer: await viewer(request, reply, session, access.orgId),
        orgName: org.name,
        projects,
        projectId,
        status,
        keys: list.rows.map((r) => ops.info(r)),
        requests24h,
        nextCursor: list.nextCursor,
        paged: cursor !== undefined,
        allMembers: isAllowed(access, 'keys.manage_others'),
        now: ctx.clock(),
      }),
    );
  });

  async function newKeyForm(
    request: FastifyRequest,
    reply: FastifyReply,
    session: BrowserSession,
    access: OrgAccess,
    o: {
      status: number;
      projectId?: string;
      name?: string;
      expiry?: string;
      scopes?: Scope[];
      error?: string;
    },
  ): Promise<FastifyReply> {
    const [org, projects] = await Promise.all([orgs.get(access.orgId), orgs.projects(access)]);
    const projectId =
      projects.find((p) => p.id === o.projectId)?.id ?? projects.find((p) => p.name === 'default')?.id;
    return send(
      reply,
      o.status,
      newKeyPage({
        viewer: await viewer(request, reply, session, access.orgId),
        orgName: org.name,
        role: access.role,
        projects,
        projectId,
        scopes: scopeChoices(access.role, o.scopes ?? ['read']),
        name: o.name,
        expiry: o.expiry,
        nonce: randomToken(16),
        error: o.error,
      }),
    );
  }

  app.get('/keys/new', { schema: HIDE }, async (request, reply) => {
    const session = await signedIn(request, reply);
    if (!session) return reply;
    const access = await currentOrg(request, authOf(session), field(request.query, 'org_id'));
    if (field(request.query, 'org_id')) rememberOrg(reply, access.orgId);
    return newKeyForm(request, reply, session, access, {
      status: 200,
      projectId: field(request.query, 'project_id'),
    });
  });

  app.post('/keys/new', { schema: HIDE, config: rateLimit(30) }, async (request, reply) => {
    const session = await formSession(request, reply);
    if (!session) return reply;
    const auth = authOf(session);
    const body = request.body;
    const access = await currentOrg(request, auth, field(body, 'org_id') ?? '');
    const nonce = field(body, 'nonce') ?? '';
    if (!/^[A-Za-z0-9_-]{16,64}$/.test(nonce) || !onceTokens.consume(`${session.id}:${nonce}`, Date.now())) {
      flash.set(reply, {
        kind: 'error',
        text: 'That form was sent already. Its key was created once; the plaintext is not shown again (rotate the key to get a new one).',
      });
      return seeOther(reply, `/keys?org_id=${access.orgId}`);
    }
    const name = textInput(field(body, 'name'), 200);
    const projectId = field(body, 'project_id');
    const expiry = field(body, 'expires_in_s') ?? '';
    const choice = EXPIRY_CHOICES.find((c) => c.value === expiry);
    const again = (status: number, error: string, scopes?: Scope[]) =>
      newKeyForm(request, reply, session, access, {
        status,
        projectId,
        name: (field(body, 'name') ?? '').slice(0, 200),
        expiry,
        scopes,
        error,
      });
    let scopes: Scope[];
    try {
      scopes = scopesFrom(body);
    } catch (err) {
      return again(400, (err as Error).message);
    }
    if (!name)
      return again(400, 'Give the key a name (up to 200 characters, no control characters).', scopes);
    if (!choice) return again(400, 'Pick an expiry from the list.', scopes);
    if (!projectId || !isPossibleId(projectId)) return again(400, 'Pick a project.', scopes);
    try {
      const { row, apiKey } = await ops.create(
        auth,
        {
          name,
          scopes,
          project_id: projectId,
          ...(choice.value ? { expires_in_s: Number(choice.value) } : {}),
        },
        byRequest(request, auth),
      );
      return send(
        reply,
        201,
        createdKeyPage({
          viewer: await viewer(request, reply, session, access.orgId),
          key: ops.info(row),
          apiKey,
          now: ctx.clock(),
        }),
      );
    } catch (err) {
      const message = refusal(err);
      if (message === null) throw err;
      return again(err instanceof HttpError ? err.statusCode : 400, message, scopes);
    }
  });

  app.get<{ Params: { key_id: string } }>('/keys/:key_id', { schema: HIDE }, async (request, reply) => {
    const session = await signedIn(request, reply);
    if (!session) return reply;
    const auth = authOf(session);
    const { row, access } = await ops.load(auth, request.params.key_id);
    const range: UsageRange = field(request.query, 'usage') === '30d' ? '30d' : '7d';
    const eventsCursor = field(request.query, 'events_cursor') || undefined;
    const [org, project, creator, points, log] = await Promise.all([
      orgs.get(access.orgId),
      row.project_id ? ctx.store.orgs.project(row.project_id) : undefined,
      ctx.store.users.get(row.user_id),
      usageSeries(ctx, row.id, range),
      readAuditLog(ctx, orgs, auth, {
        org_id: access.orgId,
        key_id: row.id,
        // nothing happens to a key before it exists: bounds the scan of the log
        since: row.created_at,
        limit: 20,
        cursor: eventsCursor,
      }).catch((err: unknown) => {
        // a cursor not of ours: the newest events
        if (err instanceof HttpError && err.code === 'VALIDATION_FAILED') {
          return readAuditLog(ctx, orgs, auth, {
            org_id: access.orgId,
            key_id: row.id,
            since: row.created_at,
            limit: 20,
          });
        }
        throw err;
      }),
    ]);
    return send(
      reply,
      200,
      keyPage({
        viewer: await viewer(request, reply, session, access.orgId),
        key: ops.info(row),
        orgName: org.name,
        projectName: project?.name ?? '—',
        creatorEmail: creator?.email ?? 'a former member',
        role: access.role,
        scopes: scopeChoices(access.role, scopesOf(row)),
        rotated: row.rotated_at !== null,
        now: ctx.clock(),
        extraSections: [
          usageSection({ keyId: row.id, range, points }),
          keyEventsSection({
            keyId: row.id,
            orgId: access.orgId,
            events: log.events,
            nextCursor: log.nextCursor,
            paged: eventsCursor !== undefined,
            usage: range,
            now: ctx.clock(),
          }),
        ],
      }),
    );
  });

  app.get<{ Params: { key_id: string } }>(
    '/keys/:key_id/delete',
    { schema: HIDE },
    async (request, reply) => {
      const session = await signedIn(request, reply);
      if (!session) return reply;
      const { row, access } = await ops.load(authOf(session), request.params.key_id);
      return send(
        reply,
        200,
        deleteConfirmPage({
          viewer: await viewer(request, reply, session, access.orgId),
          key: ops.info(row),
          now: ctx.clock(),
        }),
      );
    },
  );

  type KeyPost = { Params: { key_id: string } };
  const keyPost = { schema: HIDE, config: rateLimit(60) };

  app.post<KeyPost>('/keys/:key_id/rename', keyPost, async (request, reply) => {
    const session = await formSession(request, reply);
    if (!session) return reply;
    const id = request.params.key_id;
    return act(reply, `/keys/${id}`, async () => {
      const name = textInput(field(request.body, 'name'), 200);
      if (!name) throw new PageError('Give the key a name (up to 200 characters, no control characters).');
      const row = await ops.update(authOf(session), id, { name }, pageBy(request, session));
      return { flash: { kind: 'ok', text: `Renamed to “${row.name}”.` } };
    });
  });

  app.post<KeyPost>('/keys/:key_id/scopes', keyPost, async (request, reply) => {
    const session = await formSession(request, reply);
    if (!session) return reply;
    const id = request.params.key_id;
    return act(reply, `/keys/${id}`, async () => {
      const row = await ops.update(
        authOf(session),
        id,
        { scopes: scopesFrom(request.body) },
        pageBy(request, session),
      );
      return { flash: { kind: 'ok', text: `Scopes of “${row.name}”: ${scopesOf(row).join(', ')}.` } };
    });
  });

  app.post<KeyPost>('/keys/:key_id/rotate', keyPost, async (request, reply) => {
    const session = await formSession(request, reply);
    if (!session) return reply;
    const id = request.params.key_id;
    const grace = GRACE_CHOICES.find((g) => String(g.value) === field(request.body, 'grace_period_s'));
    if (!grace) {
      flash.set(reply, { kind: 'error', text: 'Pick how long the old key keeps working.' });
      return seeOther(reply, `/keys/${id}`);
    }
    let rotated: Awaited<ReturnType<typeof ops.rotate>>;
    try {
      rotated = await ops.rotate(authOf(session), id, grace.value, pageBy(request, session));
    } catch (err) {
      const message = refusal(err);
      if (message === null) throw err;
      // a resubmitted rotation lands here (409: already rotated): no plaintext again
      flash.set(reply, { kind: 'error', text: message });
      return seeOther(reply, `/keys/${id}`);
    }
    const orgId = rotated.row.org_id ?? '';
    return send(
      reply,
      201,
      rotatedKeyPage({
        viewer: await viewer(request, reply, session, orgId),
        key: ops.info(rotated.row),
        previous: ops.info(rotated.previous),
        apiKey: rotated.apiKey,
        now: ctx.clock(),
      }),
    );
  });

  for (const action of ['disable', 'enable'] as const) {
    app.post<KeyPost>(`/keys/:key_id/${action}`, keyPost, async (request, reply) => {
      const session = await formSession(request, reply);
      if (!session) return reply;
      const id = request.params.key_id;
      return act(reply, `/keys/${id}`, async () => {
        const row = await ops.setEnabled(authOf(session), id, action, pageBy(request, session));
        return {
          flash: {
            kind: 'ok',
            text:
              action === 'disable'
                ? `“${row.name}” is disabled: requests with it fail until you enable it.`
                : `“${row.name}” is enabled again.`,
          },
        };
      });
    });
  }

  app.post<KeyPost>('/keys/:key_id/delete', keyPost, async (request, reply) => {
    const session = await formSession(request, reply);
    if (!session) return reply;
    const id = request.params.key_id;
    return act(reply, `/keys/${id}`, async () => {
      const row = await ops.delete(authOf(session), id, pageBy(request, session));
      return {
        to: `/keys?org_id=${row.org_id ?? ''}`,
        flash: { kind: 'ok', text: `Deleted “${row.name}” (${row.prefix}…).` },
      };
    });
  });

  // ---- account --------------------------------------------------------------------------------

  app.get('/account', { schema: HIDE }, async (request, reply) => {
    const session = await signedIn(request, reply);
    if (!session) return reply;
    const auth = authOf(session);
    const access = await currentOrg(request, auth);
    const now = ctx.clock();
    const [list, cliKeys] = await Promise.all([
      sessionRepo.listLive(session.user.id, now.toISOString()),
      queries.cliLoginKeys(session.user.id, 50),
    ]);
    return send(
      reply,
      200,
      accountPage({
        viewer: await viewer(request, reply, session, access.orgId),
        sessions: list,
        currentSessionId: session.id,
        cliKeys: cliKeys.map((r) => ops.info(r)),
        now,
      }),
    );
  });

  app.post<{ Params: { session_id: string } }>(
    '/account/sessions/:session_id/revoke',
    { schema: HIDE, config: rateLimit(30) },
    async (request, reply) => {
      const session = await formSession(request, reply);
      if (!session) return reply;
      if (request.params.session_id === session.id) {
        await sessions.destroy(request, reply);
        return seeOther(reply, '/login');
      }
      const ended = await sessionRepo.deleteOfUser(session.user.id, request.params.session_id);
      flash.set(
        reply,
        ended
          ? { kind: 'ok', text: 'That session is signed out.' }
          : { kind: 'error', text: 'No such session: it ended already.' },
      );
      return seeOther(reply, '/account');
    },
  );

  app.post(
    '/account/sessions/revoke-all',
    { schema: HIDE, config: rateLimit(30) },
    async (request, reply) => {
      const session = await formSession(request, reply);
      if (!session) return reply;
      await sessionRepo.deleteAllOfUser(session.user.id);
      await sessions.destroy(request, reply);
      return seeOther(reply, '/login');
    },
  );

  // ---- organizations ----------------------------------------------------------------------------

  app.get<{ Params: { org_id: string } }>('/orgs/:org_id', { schema: HIDE }, async (request, reply) => {
    const session = await signedIn(request, reply);
    if (!session) return reply;
    const auth = authOf(session);
    const access = await orgs.access(auth, request.params.org_id);
    rememberOrg(reply, access.orgId);
    const canInvite = isAllowed(access, 'members.invite');
    const [org, members, projects, invitations] = await Promise.all([
      orgs.get(access.orgId),
      orgs.members(access),
      orgs.projects(access),
      canInvite ? orgs.invitations(access) : undefined,
    ]);
    // the platform sections, each only for the roles that may use it (authz.ts decides)
    const now = ctx.clock();
    const extraSections = [];
    if (isAllowed(access, 'webhooks.read')) {
      const hooks = await webhooks().list(access);
      extraSections.push(
        webhooksSection({
          orgId: access.orgId,
          csrf: session.csrf,
          hooks: await Promise.all(
            hooks.map(async (hook) => ({ hook, deliveries: await webhooks().deliveries(auth, hook.id, 10) })),
          ),
          events: WEBHOOK_EVENTS,
          canManage: isAllowed(access, 'webhooks.manage'),
          now,
        }),
      );
    }
    if (isAllowed(access, 'oidc_trusts.manage')) {
      extraSections.push(
        oidcSection({
          orgId: access.orgId,
          orgName: org.name,
          csrf: session.csrf,
          role: access.role,
          trusts: await oidc.list(auth, access.orgId),
          projects,
          scopes: scopeChoices(access.role, ['read']),
          now,
        }),
      );
    }
    if (isAllowed(access, 'org.update')) {
      extraSections.push(
        leakPolicySection({
          orgId: access.orgId,
          csrf: session.csrf,
          policy: org.leak_policy === 'notify' ? 'notify' : 'disable',
        }),
      );
    }
    return send(
      reply,
      200,
      orgPage({
        viewer: await viewer(request, reply, session, access.orgId),
        org: { id: org.id, name: org.name },
        role: access.role,
        userId: session.user.id,
        members,
        projects,
        invitations,
        can: {
          manageMembers: isAllowed(access, 'members.update'),
          manageProjects: isAllowed(access, 'projects.create'),
          invite: canInvite,
        },
        now,
        extraSections,
      }),
    );
  });

  type OrgPost = {
    Params: {
      org_id: string;
      user_id?: string;
      invitation_id?: string;
      project_id?: string;
      webhook_id?: string;
      trust_id?: string;
    };
  };
  const orgPost = { schema: HIDE, config: rateLimit(30) };

  async function orgAction(
    request: FastifyRequest<OrgPost>,
    reply: FastifyReply,
    fn: (access: OrgAccess, auth: AuthContext) => Promise<{ to?: string; flash?: Flash } | undefined>,
  ): Promise<FastifyReply> {
    const session = await formSession(request, reply);
    if (!session) return reply;
    const auth = authOf(session);
    const base = `/orgs/${request.params.org_id}`;
    return act(reply, base, async () => fn(await orgs.access(auth, request.params.org_id), auth));
  }

  app.post<OrgPost>('/orgs/:org_id/invitations', orgPost, (request, reply) =>
    orgAction(request, reply, async (access) => {
      const email = (field(request.body, 'email') ?? '').trim();
      const role = ROLES.find((r) => r === field(request.body, 'role'));
      if (!isValidEmail(email)) throw new PageError('Enter a valid email address to invite.');
      if (!role) throw new PageError('Pick a role for the invitation.');
      const inv = await orgs.invite(access, email, role, requestMeta(request));
      return { flash: { kind: 'ok', text: `Invitation sent to ${inv.email} (${inv.role}).` } };
    }),
  );

  app.post<OrgPost>('/orgs/:org_id/invitations/:invitation_id/revoke', orgPost, (request, reply) =>
    orgAction(request, reply, async (access) => {
      await orgs.revokeInvitation(access, request.params.invitation_id ?? '');
      return { flash: { kind: 'ok', text: 'Invitation revoked: its code no longer works.' } };
    }),
  );

  app.post<OrgPost>('/orgs/:org_id/members/:user_id/role', orgPost, (request, reply) =>
    orgAction(request, reply, async (access) => {
      const role = ROLES.find((r) => r === field(request.body, 'role'));
      if (!role) throw new PageError('Pick a role.');
      const member = await orgs.changeRole(access, request.params.user_id ?? '', role, requestMeta(request));
      return { flash: { kind: 'ok', text: `${member.email} is now ${member.role}.` } };
    }),
  );

  app.post<OrgPost>('/orgs/:org_id/members/:user_id/remove', orgPost, (request, reply) =>
    orgAction(request, reply, async (access, auth) => {
      const userId = request.params.user_id ?? '';
      await orgs.removeMember(access, userId, requestMeta(request));
      if (userId === auth.user.id) {
        return { to: '/keys', flash: { kind: 'ok', text: 'You left the organization.' } };
      }
      return { flash: { kind: 'ok', text: 'Member removed; their keys here stopped working.' } };
    }),
  );

  app.post<OrgPost>('/orgs/:org_id/projects', orgPost, (request, reply) =>
    orgAction(request, reply, async (access) => {
      const name = textInput(field(request.body, 'name'), 100);
      if (!name) throw new PageError('Give the project a name (up to 100 characters).');
      const project = await orgs.createProject(access, name, requestMeta(request));
      return { flash: { kind: 'ok', text: `Project “${project.name}” created.` } };
    }),
  );

  app.post<OrgPost>('/orgs/:org_id/projects/:project_id/delete', orgPost, (request, reply) =>
    orgAction(request, reply, async (access, auth) => {
      const project = await ctx.store.orgs.project(request.params.project_id ?? '');
      if (!project || project.org_id !== access.orgId) throw new HttpError('NOT_FOUND', 'No such project.');
      await orgs.deleteProject(auth, project.id, requestMeta(request));
      return { flash: { kind: 'ok', text: `Project “${project.name}” deleted.` } };
    }),
  );

  // ---- webhooks, OIDC trusts, leak policy (the same services as the API) -------------------------

  app.post<OrgPost>('/orgs/:org_id/webhooks', orgPost, (request, reply) =>
    orgAction(request, reply, async (access) => {
      const url = textInput(field(request.body, 'url'), 2048);
      if (!url) throw new PageError('Give the webhook an https URL (up to 2,048 characters).');
      const picked = fieldList(request.body, 'events');
      const specific = picked.filter((e) => e !== '*');
      const events = specific.length > 0 ? specific : picked.includes('*') ? ['*'] : [];
      if (events.length === 0) throw new PageError('Pick the events to send (or every event).');
      const hook = await webhooks().create(access, url, events, requestMeta(request));
      return { flash: { kind: 'ok', text: `Webhook added: ${hook.url}. Send a test ping to check it.` } };
    }),
  );

  app.post<OrgPost>('/orgs/:org_id/webhooks/:webhook_id/ping', orgPost, (request, reply) =>
    orgAction(request, reply, async (access, auth) => {
      const id = request.params.webhook_id ?? '';
      const { row } = await webhooks().find(auth, id, 'webhooks.manage');
      if (row.org_id !== access.orgId) throw new HttpError('NOT_FOUND', 'No such webhook.');
      await webhooks().ping(auth, id);
      return { flash: { kind: 'ok', text: `Test ping queued for ${row.url}: its delivery shows below.` } };
    }),
  );

  app.post<OrgPost>('/orgs/:org_id/webhooks/:webhook_id/delete', orgPost, (request, reply) =>
    orgAction(request, reply, async (access, auth) => {
      const id = request.params.webhook_id ?? '';
      const { row } = await webhooks().find(auth, id, 'webhooks.manage');
      if (row.org_id !== access.orgId) throw new HttpError('NOT_FOUND', 'No such webhook.');
      const hook = await webhooks().delete(auth, id, requestMeta(request));
      return { flash: { kind: 'ok', text: `Webhook deleted: nothing more is sent to ${hook.url}.` } };
    }),
  );

  const claimName = new RegExp(CLAIM_NAME_PATTERN);

  app.post<OrgPost>('/orgs/:org_id/oidc-trusts', orgPost, (request, reply) =>
    orgAction(request, reply, async (access, auth) => {
      const issuer = textInput(field(request.body, 'issuer'), 512);
      if (!issuer) throw new PageError('Give the issuer’s https URL.');
      const audienceText = field(request.body, 'audience')?.trim() ?? '';
      const audience = audienceText ? textInput(audienceText, 512) : undefined;
      if (audienceText && !audience)
        throw new PageError('The audience is too long or has control characters.');
      const claims: Record<string, string> = {};
      for (const line of (field(request.body, 'claims') ?? '').slice(0, 8000).split(/\r?\n/)) {
        if (line.trim() === '') continue;
        const eq = line.indexOf('=');
        const name = eq > 0 ? line.slice(0, eq).trim() : '';
        const value = eq > 0 ? textInput(line.slice(eq + 1).trim(), 256) : undefined;
        if (!claimName.test(name) || value === undefined) {
          throw new PageError(
            'Write each claim as name=value on its own line (names: letters, digits, _ . : -; values up to 256 characters).',
          );
        }
        claims[name] = value;
      }
      const count = Object.keys(claims).length;
      if (count === 0 || count > 20)
        throw new PageError('Give between 1 and 20 claims the token must carry.');
      const ttl = TRUST_TTL_CHOICES.find((c) => String(c.value) === field(request.body, 'ttl_s'));
      if (!ttl) throw new PageError('Pick a key lifetime from the list.');
      const projectId = field(request.body, 'project_id') ?? '';
      if (!isPossibleId(projectId)) throw new PageError('Pick a project.');
      const trust = await oidc.create(
        auth,
        access.orgId,
        {
          issuer,
          ...(audience ? { audience } : {}),
          claims,
          project_id: projectId,
          scopes: scopesFrom(request.body),
          ttl_s: ttl.value,
        },
        byRequest(request, auth),
      );
      return { flash: { kind: 'ok', text: `Trust added for ${trust.issuer}.` } };
    }),
  );

  app.post<OrgPost>('/orgs/:org_id/oidc-trusts/:trust_id/delete', orgPost, (request, reply) =>
    orgAction(request, reply, async (access, auth) => {
      const id = request.params.trust_id ?? '';
      const found = await ctx.store.oidc.trust(id);
      if (!found || found.org_id !== access.orgId) throw new HttpError('NOT_FOUND', 'No such OIDC trust.');
      const row = await oidc.delete(auth, id);
      return { flash: { kind: 'ok', text: `Trust for ${row.issuer} deleted: its jobs get no more keys.` } };
    }),
  );

  app.post<OrgPost>('/orgs/:org_id/leak-policy', orgPost, (request, reply) =>
    orgAction(request, reply, async (access, auth) => {
      const policy = field(request.body, 'leak_policy');
      if (policy !== 'disable' && policy !== 'notify')
        throw new PageError('Pick what happens to a leaked key.');
      const checked = await orgs.access(auth, access.orgId, 'org.update');
      await ctx.store.orgs.setLeakPolicy(checked.orgId, policy);
      return {
        flash: {
          kind: 'ok',
          text:
            policy === 'disable'
              ? 'A key reported leaked is now disabled at once.'
              : 'A key reported leaked now keeps working; its owner is told.',
        },
      };
    }),
  );
}
