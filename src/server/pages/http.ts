import type { FastifyReply } from 'fastify';

/** What every page route shares, the sign-in pages' (routes.ts) and the dashboard's alike. */

/** A page is no API operation: kept out of the OpenAPI document. */
export const HIDE = { hide: true } as const;

/** A route's rate limit: `max` requests a minute (the pages' @fastify/rate-limit options). */
export function rateLimit(max: number) {
  return { rateLimit: { max, timeWindow: 60_000 } };
}

/** A 303 to `location`: POST-redirect-GET, and the way to sign in. */
export function seeOther(reply: FastifyReply, location: string): FastifyReply {
  return reply.code(303).header('location', location).send();
}
