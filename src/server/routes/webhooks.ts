import type { FastifyInstance } from 'fastify';
import { requireAuth } from '../plugins/auth.js';
import { requestMeta } from '../services/audit.js';
import { OrgService } from '../services/orgs.js';
import { MAX_URL_LENGTH } from '../services/webhook-target.js';
import type { WebhookService } from '../services/webhooks.js';
import { listOf, orgIdParams } from './org-schemas.js';
import { dropEmptyQueryParams, errorResponses, idSchema, textSchema } from './schemas.js';

export interface WebhookRoutesOptions {
  webhooks: WebhookService;
}

const timestamp = { type: 'string', format: 'date-time' } as const;
const nullableTimestamp = { type: ['string', 'null'], format: 'date-time' } as const;

export const webhookSchema = {
  type: 'object',
  required: ['id', 'url', 'events', 'created_at'],
  properties: {
    id: { type: 'string' },
    org_id: { type: 'string' },
    url: { type: 'string' },
    events: { type: 'array', items: { type: 'string' } },
    created_by: { type: 'string' },
    created_at: timestamp,
  },
} as const;

export const deliverySchema = {
  type: 'object',
  required: ['id', 'event', 'status', 'attempts', 'last_status_code', 'next_attempt_at'],
  properties: {
    id: { type: 'string' },
    event: { type: 'string' },
    event_id: { type: 'string' },
    status: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
    attempts: { type: 'integer' },
    last_status_code: { type: ['integer', 'null'] },
    last_error: { type: ['string', 'null'] },
    next_attempt_at: nullableTimestamp,
    created_at: timestamp,
    delivered_at: nullableTimestamp,
  },
} as const;

const webhookIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: idSchema },
} as const;

/**
 * Webhooks of an organization (PLATFORM.md "Webhooks"): create, list, delete (owner, admin), the
 * delivery log and a test ping. The SSRF check of the URL and the event names are the service's.
 */
export async function webhookRoutes(app: FastifyInstance, opts: WebhookRoutesOptions): Promise<void> {
  const orgs = new OrgService(app.breeze);
  const { webhooks } = opts;
  const common = { config: { auth: 'required' as const } };

  app.post<{ Params: { org_id: string }; Body: { url: string; events: string[] } }>(
    '/v1/orgs/:org_id/webhooks',
    {
      ...common,
      schema: {
        summary: 'Create a webhook (owner, admin)',
        tags: ['webhooks'],
        params: orgIdParams,
        body: {
          type: 'object',
          required: ['url', 'events'],
          properties: {
            url: textSchema(MAX_URL_LENGTH),
            events: { type: 'array', minItems: 1, maxItems: 50, items: textSchema(64) },
          },
        },
        response: { 201: webhookSchema, ...errorResponses(400, 401, 403, 404, 409, 429) },
      },
    },
    async (request, reply) => {
      const access = await orgs.access(requireAuth(request), request.params.org_id);
      const created = await webhooks.create(
        access,
        request.body.url.trim(),
        request.body.events,
        requestMeta(request),
      );
      return reply.code(201).send(created);
    },
  );

  app.get<{ Params: { org_id: string } }>(
    '/v1/orgs/:org_id/webhooks',
    {
      ...common,
      schema: {
        summary: 'Webhooks of an organization (owner, admin)',
        tags: ['webhooks'],
        params: orgIdParams,
        response: { 200: listOf(webhookSchema), ...errorResponses(401, 403, 404, 429) },
      },
    },
    async (request) => {
      const access = await orgs.access(requireAuth(request), request.params.org_id);
      return { data: await webhooks.list(access) };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/webhooks/:id',
    {
      ...common,
      schema: {
        summary: 'Delete a webhook and its delivery log (owner, admin)',
        tags: ['webhooks'],
        params: webhookIdParams,
        response: { 204: { type: 'null' }, ...errorResponses(401, 403, 404, 429) },
      },
    },
    async (request, reply) => {
      await webhooks.delete(requireAuth(request), request.params.id, requestMeta(request));
      return reply.code(204).send();
    },
  );

  app.get<{ Params: { id: string }; Querystring: { limit: number } }>(
    '/v1/webhooks/:id/deliveries',
    {
      ...common,
      // `?limit=`: an empty parameter is one not given
      preValidation: dropEmptyQueryParams,
      schema: {
        summary: 'The delivery log of a webhook, newest first (owner, admin)',
        tags: ['webhooks'],
        params: webhookIdParams,
        querystring: {
          type: 'object',
          properties: { limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
        },
        response: { 200: listOf(deliverySchema), ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => ({
      data: await webhooks.deliveries(requireAuth(request), request.params.id, request.query.limit),
    }),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/webhooks/:id/test',
    {
      ...common,
      schema: {
        summary: 'Send a ping event to a webhook (owner, admin)',
        tags: ['webhooks'],
        params: webhookIdParams,
        response: { 202: deliverySchema, ...errorResponses(401, 403, 404, 429) },
      },
    },
    async (request, reply) => {
      const delivery = await webhooks.ping(requireAuth(request), request.params.id);
      return reply.code(202).send(delivery);
    },
  );
}
