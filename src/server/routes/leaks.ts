import type { FastifyInstance } from 'fastify';
import { KEY_LENGTH } from '../../core/api-key.js';
import { backgroundMailer } from '../mail/background.js';
import { perIpKey } from '../plugins/rate-limit.js';
import { requestMeta } from '../services/audit.js';
import {
  LEAK_ANSWER_FLOOR_MS,
  LEAK_REPORTS_PER_IP,
  LEAK_SOURCE_MAX_LENGTH,
  LeakService,
  normaliseLeakSource,
} from '../services/leaks.js';
import { errorResponses, textSchema } from './schemas.js';

interface LeakBody {
  key: string;
  source?: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `POST /v1/keys/leaks` (PLATFORM.md "Leak reports"): anyone may report a key seen in public. */
export async function leakRoutes(app: FastifyInstance): Promise<void> {
  const ctx = app.breeze;
  const leaks = new LeakService(ctx, backgroundMailer(app, ctx.mailer));

  app.post<{ Body: LeakBody }>(
    '/v1/keys/leaks',
    {
      config: { rateLimit: { ...LEAK_REPORTS_PER_IP, keyGenerator: perIpKey('leak-report-ip') } },
      schema: {
        summary: 'Report a key seen in public (same answer whether or not it exists)',
        tags: ['leaks'],
        body: {
          type: 'object',
          required: ['key'],
          properties: {
            // the shape is checked in the handler, so that a wrong key says so in one message
            key: { type: 'string', minLength: 1, maxLength: KEY_LENGTH * 4 },
            source: {
              ...textSchema(LEAK_SOURCE_MAX_LENGTH),
              description: 'where the key was seen: an http(s) URL (stored without query string)',
            },
          },
        },
        response: {
          202: {
            type: 'object',
            required: ['received'],
            properties: { received: { type: 'boolean', const: true } },
          },
          ...errorResponses(400, 413, 429),
        },
      },
    },
    async (request, reply) => {
      const started = performance.now();
      LeakService.check(request.body.key);
      const source = normaliseLeakSource(request.body.source);
      await leaks.report({ key: request.body.key, source }, requestMeta(request));
      const left = LEAK_ANSWER_FLOOR_MS - (performance.now() - started);
      if (left > 0) await sleep(left);
      return reply.code(202).header('cache-control', 'no-store').send({ received: true });
    },
  );
}
