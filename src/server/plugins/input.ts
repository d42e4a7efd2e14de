import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from '../../core/errors.js';
import { isPossibleId } from '../validation.js';

/**
 * Every route with a path parameter (`/v1/api-keys/:key_id`, `/v1/cli/logins/:login_id/exchange`,
 * `/auth/code/:id/verifications`, and any added later) gets this check before validation: an id
 * outside the alphabet of the ids this server issues names nothing that can exist, so it is `404`
 * on every engine (`400 INVALID_GRANT` on the CLI login exchange, whose answers are all 400s), and
 * it never reaches the database (PostgreSQL refuses NUL bytes with an error).
 * Must be registered before the routes.
 */
export function registerIdCheck(app: FastifyInstance): void {
  async function checkIds(request: FastifyRequest): Promise<void> {
    const params = request.params as Record<string, unknown> | undefined;
    for (const value of Object.values(params ?? {})) {
      if (!isPossibleId(value)) throw impossible(request);
    }
  }
  // API.md: the CLI login exchange answers every login it cannot redeem with a 400: an unknown
  // login id is INVALID_GRANT there (as `login_nope` is), and so is one that cannot exist
  const impossible = (request: FastifyRequest): HttpError =>
    request.routeOptions.url === '/v1/cli/logins/:login_id/exchange'
      ? new HttpError('INVALID_GRANT', 'Unknown login.')
      : new HttpError('NOT_FOUND', 'No such resource: that id cannot exist.');
  app.addHook('onRoute', (route) => {
    if (!route.url.includes(':')) return;
    const own = route.preValidation;
    route.preValidation = own ? [checkIds, ...(Array.isArray(own) ? own : [own])] : checkIds;
  });
}
