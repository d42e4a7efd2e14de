import type { FastifyInstance } from 'fastify';
import { HttpError } from '../../core/errors.js';
import { isAllowed, type OrgAccess } from '../authz.js';
import type { AuthContext } from '../context.js';
import { byRequest, requestMeta } from '../services/audit.js';
import { CLAIM_NAME_PATTERN } from '../services/oidc.js';
import { WEBHOOK_EVENTS } from '../services/webhooks.js';
import type { OrgRow, ProjectRow } from '../store/orgs.js';
import { isPossibleId } from '../validation.js';
import {
  type DashboardKit,
  type OrgPost,
  orgPost,
  PageError,
  scopeChoices,
  scopesFrom,
} from './dashboard-kit.js';
import { field, fieldList, textInput } from './forms.js';
import { leakPolicySection, oidcSection, TRUST_TTL_CHOICES, webhooksSection } from './org-platform.js';
import type { Html } from './views.js';

/**
 * The organization page's platform sections (webhooks, OIDC trusts, leak policy), each only for the
 * roles that may use it (authz.ts decides), in that order.
 */
export async function platformSections(
  kit: DashboardKit,
  o: { access: OrgAccess; auth: AuthContext; csrf: string; org: OrgRow; projects: ProjectRow[]; now: Date },
): Promise<Html[]> {
  const { access, auth, csrf, org, projects, now } = o;
  const extraSections: Html[] = [];
  if (isAllowed(access, 'webhooks.read')) {
    const hooks = await kit.webhooks().list(access);
    extraSections.push(
      webhooksSection({
        orgId: access.orgId,
        csrf,
        hooks: await Promise.all(
          hooks.map(async (hook) => ({
            hook,
            deliveries: await kit.webhooks().deliveries(auth, hook.id, 10),
          })),
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
        csrf,
        role: access.role,
        trusts: await kit.oidc.list(auth, access.orgId),
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
        csrf,
        policy: org.leak_policy === 'notify' ? 'notify' : 'disable',
      }),
    );
  }
  return extraSections;
}

const claimName = new RegExp(CLAIM_NAME_PATTERN);

/** The platform sections' actions: the same services as the API's webhook and OIDC routes. */
export function registerOrgPlatformRoutes(app: FastifyInstance, kit: DashboardKit): void {
  const { ctx, orgs, oidc } = kit;

  app.post<OrgPost>('/orgs/:org_id/webhooks', orgPost, (request, reply) =>
    kit.orgAction(request, reply, async (access) => {
      const url = textInput(field(request.body, 'url'), 2048);
      if (!url) throw new PageError('Give the webhook an https URL (up to 2,048 characters).');
      const picked = fieldList(request.body, 'events');
      const specific = picked.filter((e) => e !== '*');
      const events = specific.length > 0 ? specific : picked.includes('*') ? ['*'] : [];
      if (events.length === 0) throw new PageError('Pick the events to send (or every event).');
      const hook = await kit.webhooks().create(access, url, events, requestMeta(request));
      return { flash: { kind: 'ok', text: `Webhook added: ${hook.url}. Send a test ping to check it.` } };
    }),
  );

  app.post<OrgPost>('/orgs/:org_id/webhooks/:webhook_id/ping', orgPost, (request, reply) =>
    kit.orgAction(request, reply, async (access, auth) => {
      const id = request.params.webhook_id ?? '';
      const { row } = await kit.webhooks().find(auth, id, 'webhooks.manage');
      if (row.org_id !== access.orgId) throw new HttpError('NOT_FOUND', 'No such webhook.');
      await kit.webhooks().ping(auth, id);
      return { flash: { kind: 'ok', text: `Test ping queued for ${row.url}: its delivery shows below.` } };
    }),
  );

  app.post<OrgPost>('/orgs/:org_id/webhooks/:webhook_id/delete', orgPost, (request, reply) =>
    kit.orgAction(request, reply, async (access, auth) => {
      const id = request.params.webhook_id ?? '';
      const { row } = await kit.webhooks().find(auth, id, 'webhooks.manage');
      if (row.org_id !== access.orgId) throw new HttpError('NOT_FOUND', 'No such webhook.');
      const hook = await kit.webhooks().delete(auth, id, requestMeta(request));
      return { flash: { kind: 'ok', text: `Webhook deleted: nothing more is sent to ${hook.url}.` } };
    }),
  );

  app.post<OrgPost>('/orgs/:org_id/oidc-trusts', orgPost, (request, reply) =>
    kit.orgAction(request, reply, async (access, auth) => {
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
    kit.orgAction(request, reply, async (access, auth) => {
      const id = request.params.trust_id ?? '';
      const found = await ctx.store.oidc.trust(id);
      if (!found || found.org_id !== access.orgId) throw new HttpError('NOT_FOUND', 'No such OIDC trust.');
      const row = await oidc.delete(auth, id);
      return { flash: { kind: 'ok', text: `Trust for ${row.issuer} deleted: its jobs get no more keys.` } };
    }),
  );

  app.post<OrgPost>('/orgs/:org_id/leak-policy', orgPost, (request, reply) =>
    kit.orgAction(request, reply, async (access, auth) => {
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
