import type { FastifyPluginAsync, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import {
  decideNow,
  type GuardOptions,
  type GuardResult,
  nodeCredential,
  type PreparedGuard,
  prepareGuard,
  unavailable,
} from './guard.js';
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

/** Applies a decision: decorates an accepted request, or sends the refusal. */
function apply(decision: GuardResult, request: FastifyRequest, reply: FastifyReply): boolean {
  if (decision.ok) {
    request.breeze = decision.auth;
    const keyId = decision.headers['x-breeze-api-key-id'];
    if (keyId !== undefined) reply.header('x-breeze-api-key-id', keyId);
    return true;
  }
  reply.code(decision.status).headers(decision.headers).send(decision.body);
  return false;
}

/**
 * The guard as a callback-style hook: a key the verifier's cache answers is decided synchronously
 * (no promise on the warm path of every request); otherwise when the verifier has answered.
 */
function guard(g: PreparedGuard, request: FastifyRequest, reply: FastifyReply, done: HookDone): void {
  const decision = decideNow(nodeCredential(request.headers), g, String(request.id), request.log);
  if (!(decision instanceof Promise)) {
    if (apply(decision, request, reply)) done();
    return;
  }
  decision.then(
    (d) => {
      if (apply(d, request, reply)) done();
    },
    (err: unknown) => done(err as Error),
  );
}
type HookDone = (err?: Error) => void;
/** a route whose scopes are not scopes: refused as when the guard cannot decide */
type Misconfigured = { misconfigured: unknown };

/**
 * Fastify plugin: every route registered after it (in the same or a child context) requires a valid
 * Breeze key or JWT. Sets `request.breeze` and `x-breeze-api-key-id`; refuses in Breeze's error
 * shape. A route's `config.breeze` adds scopes or (`false`) makes it public.
 */
const plugin: FastifyPluginAsync<BreezeFastifyOptions> = async (fastify, opts) => {
  if (!opts?.verifier) throw new TypeError('the Breeze Fastify plugin needs { verifier }');
  if (!fastify.hasRequestDecorator('breeze')) fastify.decorateRequest('breeze', null);
  // the guard's own scopes are checked now (a TypeError names one that is not a scope)
  const base = prepareGuard(opts);
  // a route's guard, by its config object (the same object on every request of a route): its scopes
  // merged and ordered once; null for a public route
  const byRoute = new WeakMap<object, PreparedGuard | null | Misconfigured>();
  const routeGuard = (cfg: BreezeRouteConfig | undefined): PreparedGuard | null => {
    if (cfg === false) return null;
    return cfg?.scopes?.length ? prepareGuard(opts, cfg.scopes) : base;
  };
  // a route's scopes are checked when it is declared, not at its first request
  fastify.addHook('onRoute', (route) => {
    routeGuard((route.config as { breeze?: BreezeRouteConfig } | undefined)?.breeze);
  });
  fastify.addHook('onRequest', (request, reply, done) => {
    const config = request.routeOptions.config as { breeze?: BreezeRouteConfig } | undefined;
    let g = config ? byRoute.get(config) : undefined;
    if (g === undefined) {
      try {
        g = routeGuard(config?.breeze);
      } catch (err) {
        // a route declared before the plugin (onRoute never saw it) with a scope that is not one
        g = { misconfigured: err };
      }
      if (config) byRoute.set(config, g);
    }
    if (g === null) {
      done();
      return;
    }
    if ('misconfigured' in g) {
      apply(unavailable(g.misconfigured, opts, String(request.id), request.log), request, reply);
      return;
    }
    guard(g, request, reply, done);
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
  if (!o?.verifier) throw new TypeError('requireBreeze needs { verifier }');
  const g = prepareGuard(o);
  return function breezeGuard(request, reply, done) {
    guard(g, request, reply, done);
  };
}
