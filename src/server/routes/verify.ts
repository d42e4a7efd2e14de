import type { FastifyInstance } from 'fastify';
import { HttpError } from '../../core/errors.js';
import type { Scope } from '../../core/types.js';
import { requireVerifier } from '../authz.js';
import { requireAuth } from '../plugins/auth.js';
import { KeyEventHub } from '../services/key-events.js';
import { VerificationService } from '../services/verification.js';
import { errorResponses, scopesSchema, userSchema } from './schemas.js';

interface VerifyBody {
  key: string;
  scopes?: Scope[];
}

const VERIFY_CODES = [
  'VALID',
  'MALFORMED',
  'NOT_FOUND',
  'DISABLED',
  'EXPIRED',
  'INSUFFICIENT_SCOPE',
  'RATE_LIMITED',
] as const;

const ratelimitSchema = {
  type: ['object', 'null'],
  required: ['limit', 'remaining', 'reset_s'],
  properties: {
    limit: { type: 'integer' },
    remaining: { type: 'integer' },
    reset_s: { type: 'integer' },
  },
} as const;

const verifyResultSchema = {
  type: 'object',
  required: ['valid', 'code'],
  properties: {
    valid: { type: 'boolean' },
    code: { type: 'string', enum: [...VERIFY_CODES] },
    key_id: { type: 'string' },
    org_id: { type: 'string' },
    project_id: { type: 'string' },
    user: userSchema,
    scopes: { type: 'array', items: { type: 'string' } },
    expires_at: { type: ['string', 'null'] },
    ratelimit: ratelimitSchema,
  },
} as const;

/** `Last-Event-ID` (or `?last_event_id=` for clients that cannot set headers): an event id we sent. */
function parseLastEventId(header: unknown, query: unknown): number | undefined {
  const raw = typeof header === 'string' ? header.trim() : typeof query === 'string' ? query : undefined;
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d{1,15}$/.test(raw)) {
    throw new HttpError('VALIDATION_FAILED', 'Last-Event-ID must be the id of an event this server sent.', {
      details: [{ field: 'headers.last-event-id', message: 'is not an event id' }],
    });
  }
  return Number(raw);
}

/**
 * PLATFORM.md "Verifying keys in your own services": `POST /v1/keys/verify` and the revocation
 * stream `GET /v1/keys/events`, both for a key with the `verify` scope, within its organization.
 */
export async function verifyRoutes(app: FastifyInstance): Promise<void> {
  const verifier = new VerificationService(app.breeze);
  const hub = new KeyEventHub(app);
  hub.start();
  // streams never end on their own: end them before the server waits for open responses
  app.addHook('preClose', async () => hub.close());
  app.addHook('onClose', async () => hub.close());

  app.post<{ Body: VerifyBody }>(
    '/v1/keys/verify',
    {
      // the caller's own per-key limit does not apply: each verification spends the CHECKED key's
      config: { auth: 'required', keyRateLimit: false },
      schema: {
        summary: 'Check a key of your organization (caller: a key with "verify")',
        tags: ['verify'],
        body: {
          type: 'object',
          required: ['key'],
          properties: {
            // any string is answered (a wrong one is MALFORMED); only absurd lengths are refused
            key: { type: 'string', maxLength: 1024 },
            scopes: scopesSchema,
          },
        },
        response: { 200: verifyResultSchema, ...errorResponses(400, 401, 403, 429) },
      },
    },
    // not async: a cached key is answered without a promise
    (request) => {
      const { orgId } = requireVerifier(requireAuth(request));
      return verifier.verify(orgId, request.body.key, request.body.scopes);
    },
  );

  app.get<{ Querystring: { last_event_id?: string } }>(
    '/v1/keys/events',
    {
      config: { auth: 'required' },
      schema: {
        summary: "Server-Sent Events: key.revoked for the caller's organization",
        tags: ['verify'],
        querystring: {
          type: 'object',
          properties: { last_event_id: { type: 'string', maxLength: 20 } },
        },
        response: {
          200: {
            description:
              'text/event-stream: `event: key.revoked` with `data: {"key_id"}` and an `id` for `Last-Event-ID`; `: ping` comments at least every 15 s.',
            content: { 'text/event-stream': { schema: { type: 'string' } } },
          },
          ...errorResponses(400, 401, 403, 429),
        },
      },
    },
    async (request, reply) => {
      const { orgId, keyId } = requireVerifier(requireAuth(request));
      const lastEventId = parseLastEventId(request.headers['last-event-id'], request.query.last_event_id);
      const out = await hub.openStream(orgId, keyId, lastEventId);
      // the client went away: forget the stream (and its slot in the per-key cap). The server allows
      // half-open connections (app.ts), so a client's FIN alone does not close the response: for a
      // stream, which has nothing left to read from the client, it means the client is gone.
      const gone = () => hub.drop(out);
      reply.raw.on('close', gone);
      request.raw.socket.once('end', gone);
      out.once('close', () => {
        hub.drop(out);
        request.raw.socket.off('end', gone);
        // a stream the server ended or dropped: the connection carries nothing else, close it
        if (!reply.raw.writableEnded) reply.raw.destroy();
      });
      return reply
        .code(200)
        .header('content-type', 'text/event-stream; charset=utf-8')
        .header('cache-control', 'no-cache, no-transform')
        .header('x-accel-buffering', 'no')
        .send(out);
    },
  );
}
