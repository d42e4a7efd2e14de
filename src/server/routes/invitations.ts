import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Role } from '../../core/types.js';
import { requireAuth } from '../plugins/auth.js';
import { perIpKey, rateLimitedError } from '../plugins/rate-limit.js';
import { requestMeta } from '../services/audit.js';
import { OrgService } from '../services/orgs.js';
import { invitationSchema, memberSchema, memberView, orgIdParams, roleSchema } from './org-schemas.js';
import { emailSchema, errorResponses, idSchema } from './schemas.js';

/** Invitations an organization may send per hour (each one mails a stranger). */
export const INVITATIONS_PER_ORG = { max: 50, timeWindow: 3600_000 } as const;
/** Accept attempts per client IP (each guesses an 8-character code; 5 wrong kill the invitation). */
export const ACCEPTS_PER_IP = { max: 30, timeWindow: 60_000 } as const;

declare module 'fastify' {
  interface FastifyInstance {
    /** see invitationLimit */
    breezeInvitationLimit: (request: FastifyRequest) => Promise<void>;
  }
}

/**
 * The per-organization cap on invitations (INVITATIONS_PER_ORG), for a request naming the
 * organization in `:org_id`: resolves when one more may be sent, else throws 429. Built once by
 * buildApp (`app.breezeInvitationLimit`), so the API and the dashboard's form count in one counter:
 * a limiter of each would let an organization send its quota twice over. Ask it only for callers
 * allowed to invite: strangers cannot use up an organization's quota.
 */
export function invitationLimit(app: FastifyInstance): (request: FastifyRequest) => Promise<void> {
  const perOrg = app.createRateLimit({
    ...INVITATIONS_PER_ORG,
    keyGenerator: (req: FastifyRequest) => `invite-org:${(req.params as { org_id: string }).org_id}`,
  });
  return async (request) => {
    const r = await perOrg(request);
    if (!r.isAllowed && r.isExceeded)
      throw rateLimitedError(request, { after: `${r.ttlInSeconds}s`, ttl: r.ttl });
  };
}

/** `POST /v1/orgs/:org_id/invitations` and `POST /v1/invitations/:id/accept`. */
export async function invitationRoutes(app: FastifyInstance): Promise<void> {
  const orgs = new OrgService(app.breeze);

  app.post<{ Params: { org_id: string }; Body: { email: string; role: Role } }>(
    '/v1/orgs/:org_id/invitations',
    {
      config: { auth: 'required' },
      schema: {
        summary: 'Invite someone by email (owner, admin): mails a link and an 8-character code, valid 7 days',
        tags: ['orgs'],
        params: orgIdParams,
        body: {
          type: 'object',
          required: ['email', 'role'],
          properties: { email: emailSchema, role: roleSchema },
        },
        response: { 201: invitationSchema, ...errorResponses(400, 401, 403, 404, 409, 429) },
      },
    },
    async (request, reply) => {
      const access = await orgs.access(requireAuth(request), request.params.org_id, 'members.invite');
      // counted only for callers allowed to invite: strangers cannot use up an organization's quota
      await app.breezeInvitationLimit(request);
      const inv = await orgs.invite(access, request.body.email, request.body.role, requestMeta(request));
      return reply.code(201).send({
        id: inv.id,
        org_id: inv.org_id,
        email: inv.email,
        role: inv.role,
        expires_at: inv.expires_at,
      });
    },
  );

  app.post<{ Params: { id: string }; Body: { code: string } }>(
    '/v1/invitations/:id/accept',
    {
      config: {
        auth: 'required',
        rateLimit: { ...ACCEPTS_PER_IP, keyGenerator: perIpKey('invitation-accept-ip') },
      },
      schema: {
        summary: 'Accept an invitation (the invited email only, with its code); 404 for anything wrong',
        tags: ['orgs'],
        params: { type: 'object', required: ['id'], properties: { id: idSchema } },
        body: {
          type: 'object',
          required: ['code'],
          properties: { code: { type: 'string', minLength: 1, maxLength: 64 } },
        },
        response: {
          // the membership, and the organization it is in (the accepter learns which one they joined)
          200: {
            ...memberSchema,
            required: [...memberSchema.required, 'org_id'],
            properties: { ...memberSchema.properties, org_id: { type: 'string' } },
          },
          ...errorResponses(400, 401, 403, 404, 409, 429),
        },
      },
    },
    async (request) => {
      const member = await orgs.accept(
        requireAuth(request),
        request.params.id,
        request.body.code,
        requestMeta(request),
      );
      return { ...memberView(member), org_id: member.org_id };
    },
  );
}
