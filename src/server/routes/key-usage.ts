import type { FastifyInstance } from 'fastify';
import { HttpError } from '../../core/errors.js';
import { authInOrg, authorizeKeyAction, authorizeKeyVisibility } from '../authz.js';
import { requireAuth } from '../plugins/auth.js';
import { OrgService } from '../services/orgs.js';
import { dropEmptyQueryParams, errorResponses, keyIdParams } from './schemas.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** At most this many buckets per answer (93 days of hours). */
export const MAX_USAGE_BUCKETS = 24 * 93;

interface UsageQuery {
  from?: string;
  to?: string;
  granularity?: 'hour' | 'day';
}

export interface UsageBucket {
  at: string;
  requests: number;
  rejected: number;
}

function invalid(field: string, message: string): HttpError {
  return new HttpError('VALIDATION_FAILED', `Invalid ${field}: ${message}.`, {
    details: [{ field: `querystring.${field}`, message }],
  });
}

const floorTo = (ms: number, step: number) => ms - (((ms % step) + step) % step);

/**
 * `GET /v1/api-keys/:key_id/usage` (PLATFORM.md "Audit log and usage"): the key's requests and
 * refusals per hour or day (UTC), every bucket of the range present (zeros included), oldest first.
 * Same visibility as reading the key. Counts this instance has not flushed yet are included.
 */
export async function keyUsageRoutes(app: FastifyInstance): Promise<void> {
  const { store, clock, usage } = app.breeze;
  const orgs = new OrgService(app.breeze);

  app.get<{ Params: { key_id: string }; Querystring: UsageQuery }>(
    '/v1/api-keys/:key_id/usage',
    {
      config: { auth: 'required' },
      // `?from=&to=&granularity=`: an empty parameter is one not given
      preValidation: dropEmptyQueryParams,
      schema: {
        summary: "A key's requests and refusals per hour or day",
        tags: ['api-keys'],
        params: keyIdParams,
        querystring: {
          type: 'object',
          properties: {
            from: {
              type: 'string',
              format: 'date-time',
              description: 'default: 24 h (hour) or 30 days (day) before `to`',
            },
            to: {
              type: 'string',
              format: 'date-time',
              description: 'exclusive; default: the end of the current bucket',
            },
            granularity: { type: 'string', enum: ['hour', 'day'], default: 'hour' },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['data'],
            properties: {
              data: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['at', 'requests', 'rejected'],
                  properties: {
                    at: { type: 'string' },
                    requests: { type: 'integer' },
                    rejected: { type: 'integer' },
                  },
                },
              },
            },
          },
          ...errorResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request) => {
      const caller = requireAuth(request);
      const row = await store.keys.get(request.params.key_id);
      const notFound = () => new HttpError('NOT_FOUND', 'No such API key.');
      if (!row?.org_id) throw notFound();
      const access = await orgs.access(caller, row.org_id).catch((err: unknown) => {
        throw err instanceof HttpError && err.code === 'NOT_FOUND' ? notFound() : err;
      });
      authorizeKeyVisibility(access, row);
      authorizeKeyAction(authInOrg(access), row, 'read');

      const step = request.query.granularity === 'day' ? DAY_MS : HOUR_MS;
      const now = clock().getTime();
      const toMs = request.query.to ? Date.parse(request.query.to) : floorTo(now, step) + step;
      if (Number.isNaN(toMs)) throw invalid('to', 'is not a date-time');
      const fromMs = request.query.from
        ? Date.parse(request.query.from)
        : toMs - (step === DAY_MS ? 30 * DAY_MS : DAY_MS);
      if (Number.isNaN(fromMs)) throw invalid('from', 'is not a date-time');
      const start = floorTo(fromMs, step);
      if (start >= toMs) throw invalid('from', 'must be before to');
      if ((toMs - start) / step > MAX_USAGE_BUCKETS) {
        throw invalid(
          'from',
          `the range holds more than ${MAX_USAGE_BUCKETS} buckets: narrow it or use granularity=day`,
        );
      }

      const buckets = new Map<number, UsageBucket>();
      for (let t = start; t < toMs; t += step) {
        buckets.set(t, { at: new Date(t).toISOString(), requests: 0, rejected: 0 });
      }
      const hourly = await store.usage.range(
        row.id,
        new Date(floorTo(start, HOUR_MS)).toISOString(),
        new Date(toMs).toISOString(),
      );
      for (const h of [...hourly, ...usage.pending(row.id)]) {
        const t = Date.parse(h.hour);
        if (t < start || t >= toMs) continue;
        const b = buckets.get(floorTo(t, step));
        if (!b) continue;
        b.requests += h.requests;
        b.rejected += h.rejected;
      }
      return { data: [...buckets.values()] };
    },
  );
}
