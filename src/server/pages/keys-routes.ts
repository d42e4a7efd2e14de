import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../../core/errors.js';
import { randomToken } from '../../core/ids.js';
import type { KeyStatus, Scope } from '../../core/types.js';
import { isAllowed, type OrgAccess } from '../authz.js';
import { byRequest } from '../services/audit.js';
import { requestsLast24h } from '../services/usage.js';
import type { BrowserSession } from '../session.js';
import { isPossibleId } from '../validation.js';
import {
  authOf,
  type DashboardKit,
  PAGE_SIZE,
  refusal,
  scopeChoices,
  scopesFrom,
  send,
} from './dashboard-kit.js';
import { field, textInput } from './forms.js';
import { HIDE, rateLimit, seeOther } from './http.js';
import { createdKeyPage, EXPIRY_CHOICES, newKeyPage } from './key-new-page.js';
import { keysPage, STATUS_FILTERS } from './keys-page.js';

/**
 * `/keys` (the organization's keys, by project and status, 50 a page) and `/keys/new` (create one;
 * its POST shows the plaintext once, and a resubmitted form never creates or shows a second).
 */
export function registerKeysRoutes(app: FastifyInstance, kit: DashboardKit): void {
  const { ctx, ops, orgs } = kit;

  app.get('/keys', { schema: HIDE }, async (request, reply) => {
    const seen = await kit.orgPage(request, reply);
    if (!seen) return reply;
    const { session, auth, access } = seen;
    const q = request.query;
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
        viewer: await kit.viewer(request, reply, session, access.orgId),
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
        viewer: await kit.viewer(request, reply, session, access.orgId),
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
    const seen = await kit.orgPage(request, reply);
    if (!seen) return reply;
    const { session, access } = seen;
    return newKeyForm(request, reply, session, access, {
      status: 200,
      projectId: field(request.query, 'project_id'),
    });
  });

  app.post('/keys/new', { schema: HIDE, config: rateLimit(30) }, async (request, reply) => {
    const session = await kit.formSession(request, reply);
    if (!session) return reply;
    const auth = authOf(session);
    const body = request.body;
    const access = await kit.currentOrg(request, auth, field(body, 'org_id') ?? '');
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
    // The form's one-time token is used only now, once the form is valid (a reload of a refused
    // form shows the same refusal), and given back when no key was made.
    const nonce = field(body, 'nonce') ?? '';
    if (!/^[A-Za-z0-9_-]{16,64}$/.test(nonce) || !(await kit.sessions.useFormToken(session, nonce))) {
      kit.flash.set(reply, session, {
        kind: 'error',
        text: 'That form was sent already. Its key was created once; the plaintext is not shown again (rotate the key to get a new one).',
      });
      return seeOther(reply, `/keys?org_id=${access.orgId}`);
    }
    let created: Awaited<ReturnType<typeof ops.create>>;
    try {
      created = await ops.create(
        auth,
        {
          name,
          scopes,
          project_id: projectId,
          ...(choice.value ? { expires_in_s: Number(choice.value) } : {}),
        },
        byRequest(request, auth),
      );
    } catch (err) {
      await kit.sessions.releaseFormToken(session, nonce);
      const message = refusal(err);
      if (message === null) throw err;
      return again(err instanceof HttpError ? err.statusCode : 400, message, scopes);
    }
    const { row, apiKey } = created;
    return send(
      reply,
      201,
      createdKeyPage({
        viewer: await kit.viewer(request, reply, session, access.orgId),
        key: ops.info(row),
        apiKey,
        now: ctx.clock(),
      }),
    );
  });
}
