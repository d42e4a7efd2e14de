import type { FastifyServerOptions } from 'fastify';

/**
 * Paths the logger must never print. Request/response serializers below already keep only the
 * method, the path without its query string, and the status; redaction is the second belt.
 */
export const REDACT_PATHS = [
  'req.headers["xi-api-key"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers["xi-api-key"]',
  'headers.authorization',
  'headers.cookie',
  '*.api_key',
  '*.secret',
  '*.token',
  '*.code',
  '*.code_verifier',
  '*.password',
];

type LoggerOptions = Exclude<FastifyServerOptions['logger'], boolean | undefined>;

/** JSON-lines logger options for `breeze serve`: redacting, query strings stripped. */
export function loggerOptions(level = 'info'): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
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
