import type { IncomingMessage, ServerResponse } from 'node:http';
import { decideNow, type GuardOptions, type GuardResult, nodeCredential, prepareGuard } from './guard.js';
import { safeToken } from './http.js';
import type { BreezeAuth } from './types.js';

export type { BreezeAuth } from './types.js';

declare global {
  // Express's own request type, when @types/express is installed (harmless when it is not)
  namespace Express {
    interface Request {
      /** who is calling, set by the Breeze middleware on accepted requests */
      breeze?: BreezeAuth;
    }
  }
}

/** A request as connect/Express hand it over, with what the middleware adds. */
export type BreezeRequest = IncomingMessage & { breeze?: BreezeAuth; id?: unknown };
export type NextFunction = (err?: unknown) => void;

/**
 * connect/Express middleware: refuses requests without a valid Breeze key or JWT in Breeze's error
 * shape; on accepted ones sets `req.breeze` and the `x-breeze-api-key-id` response header.
 * `app.use(breezeExpress({ verifier }))`, or per route `app.post('/x', breezeExpress({ verifier,
 * scopes: ['write'] }), handler)`.
 */
export function breezeExpress(
  o: GuardOptions,
): (req: BreezeRequest, res: ServerResponse, next: NextFunction) => void {
  if (!o?.verifier) throw new TypeError('breezeExpress needs { verifier }');
  const g = prepareGuard(o);
  return (req, res, next) => {
    const apply = (decision: GuardResult) => {
      // something else answered while Breeze was being asked (a request timeout, ...): headers can
      // no longer be set, and the handler must not run for a request that has had its answer
      if (res.headersSent) {
        next(new Error('Breeze guard: response already started'));
        return;
      }
      if (decision.ok) {
        req.breeze = decision.auth;
        for (const [k, v] of Object.entries(decision.headers)) res.setHeader(k, v);
        next();
        return;
      }
      res.statusCode = decision.status;
      for (const [k, v] of Object.entries(decision.headers)) res.setHeader(k, v);
      res.end(JSON.stringify(decision.body));
    };
    const decision = decideNow(nodeCredential(req.headers), g, safeToken(req.headers['x-request-id']));
    // a throw in apply must reach next, never become an unhandled rejection (it ends the process)
    if (decision instanceof Promise)
      decision.then(apply, (err: unknown) => next(err)).catch((err: unknown) => next(err));
    else apply(decision);
  };
}

export default breezeExpress;
