import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type ErrorCode, HttpError } from '../../core/errors.js';
import { isPossibleId } from '../validation.js';

/** A route's answer to an id that cannot exist, when it is not 404 (`config: { impossibleId }`). */
export interface ImpossibleId {
  code: ErrorCode;
  message: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** see registerIdCheck */
    impossibleId?: ImpossibleId;
  }
}

/**
 * Every route with a path parameter (`/v1/api-keys/:key_id`, `/v1/cli/logins/:login_id/exchange`,
 * `/auth/code/:id/verifications`, and any added later) gets this check before validation: an id
 * outside the alphabet of the ids this server issues names nothing that can exist, so it is `404`
 * on every engine (or what the route's `config.impossibleId` says: the CLI login exchange answers
 * it as an unknown login), and it never reaches the database (PostgreSQL refuses NUL bytes with an
 * error).
 * Must be registered before the routes.
 */
export function registerIdCheck(app: FastifyInstance): void {
  async function checkIds(request: FastifyRequest): Promise<void> {
    const params = request.params as Record<string, unknown> | undefined;
    for (const value of Object.values(params ?? {})) {
      if (!isPossibleId(value)) throw impossible(request);
    }
  }
  // a route may answer an id that cannot exist as it answers an unknown one (`config.impossibleId`)
  const impossible = (request: FastifyRequest): HttpError => {
    const own = request.routeOptions.config.impossibleId;
    return own
      ? new HttpError(own.code, own.message)
      : new HttpError('NOT_FOUND', 'No such resource: that id cannot exist.');
  };
  app.addHook('onRoute', (route) => {
    if (!route.url.includes(':')) return;
    const own = route.preValidation;
    route.preValidation = own ? [checkIds, ...(Array.isArray(own) ? own : [own])] : checkIds;
  });
}
