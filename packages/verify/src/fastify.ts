import type { FastifyPluginAsync, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { decide, type GuardOptions, nodeHeaderGetter } from './guard.js';
import type { BreezeAuth, BreezeScope } from './types.js';

export type { BreezeAuth } from './types.js';

/** Per-route settings: `config: { breeze: { scopes: ['write'] } }`, or `config: { breeze: false }` for a public route. */
export type BreezeRouteConfig = false | { scopes?: readonly BreezeScope[] };

declare module 'fastify' {
  interface FastifyRequest {
    /** who is calling, set by the Breeze guard on accepted requests; null on public routes */
    breeze: BreezeAuth | null;
  }
  interface FastifyContextConfig {
    /** the Breeze guard for this route: required scopes, or `false` for a public route */
    breeze?: BreezeRouteConfig;
  }
}

export interface BreezeFastifyOptions extends GuardOptions {}

async function guard(
  o: GuardOptions,
  scopes: readonly BreezeScope[] | undefined,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  const decision = await decide(nodeHeaderGetter(request.headers), {
    ...o,
    ...(scopes ? { scopes } : {}),
    requestId: String(request.id),
    onVerifyError: (err) => {
      request.log.error({ err }, 'Breeze key verification unavailable');
      o.onVerifyError?.(err);
    },
  });
  if (decision.ok) {
    request.breeze = decision.auth;
    reply.headers(decision.headers);
    return;
  }
  reply.code(decision.status).headers(decision.headers);
  await reply.send(decision.body);
  return reply;
}

/**
 * Fastify plugin: every route registered after it (in the same or a child context) requires a valid
 * Breeze key or JWT. Sets `request.breeze` and `x-breeze-api-key-id`; refuses in Breeze's error
 * shape. A route's `config.breeze` adds scopes or (`false`) makes it public.
 */
const plugin: FastifyPluginAsync<BreezeFastifyOptions> = async (fastify, opts) => {
  if (!opts?.verifier) throw new TypeError('the Breeze Fastify plugin needs { verifier }');
  if (!fastify.hasRequestDecorator('breeze')) fastify.decorateRequest('breeze', null);
  fastify.addHook('onRequest', async (request, reply) => {
    const cfg = (request.routeOptions.config as { breeze?: BreezeRouteConfig } | undefined)?.breeze;
    if (cfg === false) return;
    const scopes = [...(opts.scopes ?? []), ...(cfg?.scopes ?? [])];
    return guard(opts, scopes.length ? scopes : undefined, request, reply);
  });
};
// what fastify-plugin does: no encapsulation, so the hook and decoration reach the routes registered
// next to the plugin (set by hand: one dependency less)
const skip = plugin as unknown as Record<symbol, unknown>;
skip[Symbol.for('skip-override')] = true;
skip[Symbol.for('fastify.display-name')] = '@breeze/verify';
skip[Symbol.for('plugin-meta')] = { name: '@breeze/verify', fastify: '>=4' };

export const breezeFastify = plugin;
export default plugin;

/**
 * A per-route guard instead of the plugin: `app.get('/x', { onRequest: requireBreeze({ verifier }) }, h)`.
 * Remember `app.decorateRequest('breeze', null)` once (the plugin does it for you).
 */
export function requireBreeze(o: GuardOptions): onRequestHookHandler {
  return async function breezeGuard(request, reply) {
    await guard(o, o.scopes, request, reply);
  };
}
