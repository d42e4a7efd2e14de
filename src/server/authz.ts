import { HttpError } from '../core/errors.js';
import type { Scope } from '../core/types.js';
import type { AuthContext } from './context.js';
import { canManageKeys } from './context.js';
import { type KeyRow, scopesOf } from './store/keys.js';

/**
 * The one place that answers "may this credential do this to that key" (API.md "API keys"). Routes
 * load the key (another user's key is 404 before this is asked), then call `authorizeKeyAction`.
 *
 * - A key without `admin` may read, rotate and delete only itself; everything else is 403.
 * - Changing another key (patch, rotate, disable, enable) needs every scope that key holds: a
 *   credential must not re-enable, re-scope or mint a successor of a key wider than itself.
 * - No credential grants a scope it does not hold (create, patch).
 * - A key rotating itself keeps its old self alive for at most SELF_ROTATION_MAX_GRACE_S.
 */
export type KeyAction = 'read' | 'update' | 'rotate' | 'disable' | 'enable' | 'delete';

/** The longest the old key may live on when a key rotates itself (7 days, API.md). */
export const SELF_ROTATION_MAX_GRACE_S = 7 * 86400;

function forbidden(message: string): HttpError {
  return new HttpError('FORBIDDEN', message);
}

/** True when the caller is this very key. */
export function isSelf(auth: AuthContext, row: Pick<KeyRow, 'id'>): boolean {
  return auth.type === 'api_key' && auth.keyId === row.id;
}

/** Listing and creating keys, and changing any key but oneself, need a key manager. */
export function requireKeyManager(auth: AuthContext): void {
  if (!canManageKeys(auth)) throw forbidden('This key lacks the "admin" scope needed to manage keys.');
}

/** A caller can never hand out a scope it does not hold itself. */
export function requireScopesWithin(auth: AuthContext, scopes: readonly Scope[]): void {
  const missing = scopes.filter((s) => !auth.scopes.includes(s));
  if (missing.length > 0)
    throw forbidden(`Cannot grant scopes this credential does not hold: ${missing.join(', ')}.`);
}

/** Throws 403 unless `auth` may do `action` to `row` (a key of the caller's own user). */
export function authorizeKeyAction(auth: AuthContext, row: KeyRow, action: KeyAction): void {
  const self = isSelf(auth, row);
  if (action === 'read' || action === 'delete' || action === 'rotate') {
    if (!self && !canManageKeys(auth)) {
      throw forbidden(`Without the "admin" scope a key can only ${action} itself.`);
    }
  } else {
    requireKeyManager(auth);
  }
  if (self || action === 'read' || action === 'delete') return;
  const missing = scopesOf(row).filter((s) => !auth.scopes.includes(s));
  if (missing.length > 0) {
    throw forbidden(
      `Cannot ${action === 'update' ? 'change' : action} a key with scopes this credential does not hold: ${missing.join(', ')}.`,
    );
  }
}

/** The grace period a rotation of `row` by `auth` gets: what was asked, bounded for a self-rotation. */
export function rotationGrace(auth: AuthContext, row: KeyRow, requestedS: number): number {
  return isSelf(auth, row) ? Math.min(requestedS, SELF_ROTATION_MAX_GRACE_S) : requestedS;
}
