import type { FastifyInstance } from 'fastify';
import { HttpError } from '../../core/errors.js';
import { requireAuth } from '../plugins/auth.js';
import { byRequest } from '../services/audit.js';
import { OrgService } from '../services/orgs.js';
import { LEAK_POLICIES, type LeakPolicy, type OrgRow } from '../store/orgs.js';
import { orgIdParams, orgSchema } from './org-schemas.js';
import { errorResponses } from './schemas.js';

/** One organization with its settings (the listing's fields plus `leak_policy`). */
const orgSettingsSchema = {
  ...orgSchema,
  required: [...orgSchema.required, 'leak_policy'],
  properties: {
    ...orgSchema.properties,
    leak_policy: {
      type: 'string',
      enum: [...LEAK_POLICIES],
      description:
        'what a leak report (POST /v1/keys/leaks) does to a live key: `disable` it at once (default) or only `notify` its creator',
    },
  },
} as const;

function view(org: OrgRow, role: string) {
  return {
    id: org.id,
    name: org.name,
    role,
    created_at: org.created_at,
    leak_policy: org.leak_policy === 'notify' ? 'notify' : 'disable',
  };
}

/** `GET /v1/orgs/:org_id` and `PATCH /v1/orgs/:org_id` (the organization's leak policy). */
export async function orgSettingsRoutes(app: FastifyInstance): Promise<void> {
  const orgs = new OrgService(app.breeze);
  const common = { config: { auth: 'required' as const } };

  app.get<{ Params: { org_id: string } }>(
    '/v1/orgs/:org_id',
    {
      ...common,
      schema: {
        summary: 'One organization of the caller, with its settings',
        tags: ['orgs'],
        params: orgIdParams,
        response: { 200: orgSettingsSchema, ...errorResponses(401, 403, 404, 429) },
      },
    },
    async (request) => {
      const access = await orgs.access(requireAuth(request), request.params.org_id, 'org.read');
      return view(await orgs.get(access.orgId), access.role);
    },
  );

  app.patch<{ Params: { org_id: string }; Body: { leak_policy?: LeakPolicy } }>(
    '/v1/orgs/:org_id',
    {
      ...common,
      schema: {
        summary: "Change an organization's settings (owner, admin)",
        tags: ['orgs'],
        params: orgIdParams,
        body: {
          type: 'object',
          // the one setting there is; other fields are ignored (API.md conventions), so it is required
          required: ['leak_policy'],
          properties: { leak_policy: orgSettingsSchema.properties.leak_policy },
        },
        response: { 200: orgSettingsSchema, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => {
      const auth = requireAuth(request);
      const access = await orgs.access(auth, request.params.org_id, 'org.update');
      const policy = request.body.leak_policy;
      if (policy !== undefined) {
        const by = byRequest(request, auth);
        await app.breeze.store.transaction(async (tx) => {
          // the row lock orders concurrent changes: each event's `from` is what the change replaced
          if (!(await tx.orgs.lock(access.orgId))) throw new HttpError('NOT_FOUND', 'No such organization.');
          const before = await tx.orgs.get(access.orgId);
          const from: LeakPolicy = before?.leak_policy === 'notify' ? 'notify' : 'disable';
          if (from === policy) return;
          await tx.orgs.setLeakPolicy(access.orgId, policy);
          await app.breeze.audit.record(tx, by.meta, {
            action: 'org.updated',
            orgId: access.orgId,
            actor: by.actor,
            target: { type: 'org', id: access.orgId },
            details: { leak_policy: { from, to: policy } },
          });
        });
      }
      return view(await orgs.get(access.orgId), access.role);
    },
  );
}
