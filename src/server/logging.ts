import { type FastifyReply, type FastifyRequest, type FastifyServerOptions, LogController } from 'fastify';

/** Header paths the logger must never print (exact paths: cheap for pino to redact). */
export const REDACT_PATHS = [
  'req.headers["xi-api-key"]',
  'req.headers["x-api-key"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers["xi-api-key"]',
  'headers["x-api-key"]',
  'headers.authorization',
  'headers.cookie',
];

/**
 * Fields censored one level below the top of every log object (`{ anything: { api_key } }`), as
 * pino's `*.api_key` wildcard paths did. Done by `censorSecrets` instead: pino's wildcard redaction
 * copied every value of every line, request lines included (~12 µs a request).
 */
export const SECRET_FIELDS = ['api_key', 'secret', 'token', 'code', 'code_verifier', 'password'] as const;

const CENSOR = '[redacted]';

/**
 * pino `formatters.log`: returns `obj`, or a copy whose top-level values that own one of
 * SECRET_FIELDS are copies with those fields censored (errors keep their prototype, so pino still
 * serializes them as errors). `req` and `res` are left alone: their serializers below keep only
 * fixed, harmless fields. Checks own properties only: a Fastify reply's `code()` method is no secret.
 */
export function censorSecrets(obj: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const key in obj) {
    if (key === 'req' || key === 'res') continue;
    const value = obj[key];
    if (typeof value !== 'object' || value === null) continue;
    let copy: Record<string, unknown> | undefined;
    for (const field of SECRET_FIELDS) {
      if (!Object.hasOwn(value, field)) continue;
      copy ??= Object.create(Object.getPrototypeOf(value), Object.getOwnPropertyDescriptors(value)) as Record<
        string,
        unknown
      >;
      Object.defineProperty(copy, field, {
        value: CENSOR,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    if (copy) {
      out ??= { ...obj };
      out[key] = copy;
    }
  }
  return out ?? obj;
}

type LoggerOptions = Exclude<FastifyServerOptions['logger'], boolean | undefined>;

/** JSON-lines logger options for `breeze serve`: redacting, query strings stripped. */
export function loggerOptions(level = 'info'): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    formatters: { log: censorSecrets },
    serializers: {
      req(req: { method: string; url: string; id: string }) {
        const q = req.url.indexOf('?');
        return { id: req.id, method: req.method, path: q === -1 ? req.url : req.url.slice(0, q) };
      },
      res(res: { statusCode: number }) {
        return { statusCode: res.statusCode };
      },
    },
  } as LoggerOptions;
}

/**
 * One log line per request, written when it is answered: its id, method and path (the `req`
 * serializer above), status and time taken (`request errored` at error level when the reply failed).
 * Fastify's default writes two (one on arrival), which doubled the cost of logging a request.
 */
export class OneLineRequestLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    if (error) {
      reply.log.error(
        { req: request, res: reply, err: error, responseTime: reply.elapsedTime },
        'request errored',
      );
    } else {
      reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed');
    }
  }
}
