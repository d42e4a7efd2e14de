import { HttpError } from '../core/errors.js';
import { ROLES, type Role, SCOPES, type Scope } from '../core/types.js';
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
 * - Only the key's own user rotates it: the successor's plaintext goes to the caller, and it acts
 *   as the key's user, in every organization that user belongs to. An owner or admin managing a
 *   member's key may disable or delete it, never receive a credential of that member.
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

/**
 * `POST /v1/keys/verify` and `GET /v1/keys/events` (PLATFORM.md): only an API key whose effective
 * scopes (its own, capped by its creator's role) hold `verify`; it acts for its own organization.
 * `verify` implies nothing else, and nothing else implies it (a JWT or session cannot verify).
 */
export function requireVerifier(auth: AuthContext): { orgId: string; keyId: string } {
  if (auth.type !== 'api_key' || !auth.keyId || !auth.org) {
    throw forbidden('Verifying keys needs an API key with the "verify" scope.');
  }
  if (!auth.scopes.includes('verify')) {
    throw forbidden(
      'This key lacks the "verify" scope (only owners and admins can hold it): create one with --scopes verify.',
    );
  }
  return { orgId: auth.org.id, keyId: auth.keyId };
}

/**
 * The scopes `auth` may hand out or act on: its own, and `verify` where it holds `admin` (an
 * effective `admin` exists only under an owner or admin role, whose cap includes `verify`; checking
 * keys is less than managing them). So `breeze keys create --scopes verify` works with the key
 * `breeze login` minted (read, write, admin). `verify` itself still implies nothing else.
 */
export function grantableScopes(auth: AuthContext): readonly Scope[] {
  return auth.scopes.includes('admin') && !auth.scopes.includes('verify')
    ? [...auth.scopes, 'verify']
    : auth.scopes;
}

/** A caller can never hand out a scope it does not hold itself (see grantableScopes). */
export function requireScopesWithin(auth: AuthContext, scopes: readonly Scope[]): void {
  const held = grantableScopes(auth);
  const missing = scopes.filter((s) => !held.includes(s));
  if (missing.length > 0)
    throw forbidden(`Cannot grant scopes this credential does not hold: ${missing.join(', ')}.`);
}

/** Throws 403 unless `auth` may do `action` to `row` (a key the caller may see: see load). */
export function authorizeKeyAction(auth: AuthContext, row: KeyRow, action: KeyAction): void {
  const self = isSelf(auth, row);
  if (action === 'rotate' && row.user_id !== auth.user.id) {
    throw forbidden(
      'Only the member who created this key can rotate it (its new key would act as them): disable or delete it instead.',
    );
  }
  if (action === 'read' || action === 'delete' || action === 'rotate') {
    if (!self && !canManageKeys(auth)) {
      throw forbidden(`Without the "admin" scope a key can only ${action} itself.`);
    }
  } else {
    requireKeyManager(auth);
  }
  if (self || action === 'read' || action === 'delete') return;
  const held = grantableScopes(auth);
  const missing = scopesOf(row).filter((s) => !held.includes(s));
  if (missing.length > 0) {
    throw forbidden(
      `Cannot ${action === 'update' ? 'change' : action} a key with scopes this credential does not hold: ${missing.join(', ')}.`,
    );
  }
}

/** Why `auth` may not do `action` to `row` (authorizeKeyAction's refusal), or null when it may. */
export function keyActionRefusal(auth: AuthContext, row: KeyRow, action: KeyAction): string | null {
  try {
    authorizeKeyAction(auth, row, action);
    return null;
  } catch (err) {
    if (err instanceof HttpError) return err.message;
    throw err;
  }
}

/** The grace period a rotation of `row` by `auth` gets: what was asked, bounded for a self-rotation. */
export function rotationGrace(auth: AuthContext, row: KeyRow, requestedS: number): number {
  return isSelf(auth, row) ? Math.min(requestedS, SELF_ROTATION_MAX_GRACE_S) : requestedS;
}

// ---------------------------------------------------------------------------------------------
// Organizations (PLATFORM.md "Organizations, members, projects"): roles cap scopes, and the
// permission matrix below — data, role × action — decides what a member may do in an organization.
// ---------------------------------------------------------------------------------------------

/** What each role caps a credential's scopes to (only owners and admins hold `verify`). */
export const ROLE_CAPS: Readonly<Record<Role, readonly Scope[]>> = {
  owner: ['read', 'write', 'admin', 'verify'],
  admin: ['read', 'write', 'admin', 'verify'],
  member: ['read', 'write'],
  viewer: ['read'],
};

/** `scopes` ∩ the cap of `role`, in canonical order. */
export function capScopes(scopes: readonly Scope[], role: Role): Scope[] {
  const cap = ROLE_CAPS[role];
  return SCOPES.filter((s) => scopes.includes(s) && cap.includes(s));
}

/** Things one does inside an organization. */
export type OrgAction =
  | 'org.read'
  | 'members.list'
  | 'members.invite'
  | 'members.update'
  | 'members.remove'
  | 'members.leave'
  | 'projects.create'
  | 'projects.delete'
  | 'keys.create'
  | 'keys.manage_others'
  | 'audit.read'
  | 'webhooks.read'
  | 'webhooks.manage'
  | 'oidc_trusts.manage'
  | 'org.update';

export interface Permission {
  /** roles allowed to do it */
  roles: readonly Role[];
  /** the scope an API key needs for it on top of the role (its effective scopes in that org) */
  scope: Scope;
  /** the answer for a member whose role does not allow it: 403, or 404 where the thing is not shown to them */
  denied: 403 | 404;
  /** a scope that will also do for an API key (instead of `scope`), in the key's own organization only */
  orScope?: Scope;
  /**
   * false: an API key needs `scope` among its OWN scopes, not capped by the role (leaving: what one
   * does to oneself, which no role forbids; a viewer's key is capped to `read` yet may leave)
   */
  capped?: false;
}

const MANAGERS: readonly Role[] = ['owner', 'admin'];

/** The permission matrix. Route tests generate one case per cell (role × action × same/other org). */
export const PERMISSIONS: Readonly<Record<OrgAction, Permission>> = {
  /** list projects and read settings */
  'org.read': { roles: ROLES, scope: 'read', denied: 403 },
  /**
   * list members; also a service's `verify` key, through which @breeze/verify accepts the
   * email-code JWTs of the organization's members (PLATFORM.md "Verifying keys")
   */
  'members.list': { roles: ROLES, scope: 'read', denied: 403, orScope: 'verify' },
  'members.invite': { roles: MANAGERS, scope: 'admin', denied: 403 },
  /** change another member's role (an admin never touches an owner: see authorizeMemberChange) */
  'members.update': { roles: MANAGERS, scope: 'admin', denied: 403 },
  /** remove another member */
  'members.remove': { roles: MANAGERS, scope: 'admin', denied: 403 },
  /** remove oneself (PLATFORM.md: "or the member themself", whatever their role) */
  'members.leave': { roles: ROLES, scope: 'write', denied: 403, capped: false },
  'projects.create': { roles: MANAGERS, scope: 'admin', denied: 403 },
  'projects.delete': { roles: MANAGERS, scope: 'admin', denied: 403 },
  /** create keys of one's own in a project of the organization */
  'keys.create': { roles: ROLES, scope: 'admin', denied: 403 },
  /** see and manage keys other members created (members and viewers see only their own) */
  'keys.manage_others': { roles: MANAGERS, scope: 'admin', denied: 404 },
  /** list webhooks and their delivery logs (target URLs may hold tokens: managers only) */
  'webhooks.read': { roles: MANAGERS, scope: 'read', denied: 403 },
  /** create, delete and ping webhooks */
  'webhooks.manage': { roles: MANAGERS, scope: 'admin', denied: 403 },
  /** read the organization's audit log (how much of it: VISIBILITY['audit.all']) */
  'audit.read': { roles: ROLES, scope: 'read', denied: 403 },
  /** list, create and delete OIDC trust policies (PLATFORM.md "CI identity") */
  'oidc_trusts.manage': { roles: MANAGERS, scope: 'admin', denied: 403 },
  /** change the organization's settings (its leak policy) */
  'org.update': { roles: MANAGERS, scope: 'admin', denied: 403 },
};

/**
 * Not yes/no actions but how much a member sees of something they may read: a member without the
 * permission still reads, but only what is theirs. `audit.all`: every audit event of the
 * organization (otherwise only events one is the actor of or owns the target of).
 */
export const VISIBILITY: Readonly<Record<'audit.all', Omit<Permission, 'denied'>>> = {
  'audit.all': { roles: MANAGERS, scope: 'admin' },
};

/**
 * What a person signed in (session, JWT) acts with before the role cap: everything but `verify`,
 * which is a service's scope, held by keys only (they can still grant it: grantableScopes).
 */
export const PERSON_SCOPES: readonly Scope[] = ['read', 'write', 'admin'];

/** A credential acting inside one organization: its user's role there and the capped scopes. */
export interface OrgAccess {
  orgId: string;
  role: Role;
  /** effective scopes in this organization */
  scopes: Scope[];
  auth: AuthContext;
}

/**
 * The scopes `auth` has in an organization where its user holds `role`: a session or JWT acts with
 * the role's cap; an API key with its own scopes ∩ that cap (a key reaches every organization its
 * creator belongs to).
 */
export function orgAccess(auth: AuthContext, orgId: string, role: Role): OrgAccess {
  const base = auth.type === 'api_key' ? (auth.keyScopes ?? auth.scopes) : PERSON_SCOPES;
  return { orgId, role, scopes: capScopes(base, role), auth };
}

/** True when the matrix allows `action` to `access`. */
export function isAllowed(access: OrgAccess, action: OrgAction): boolean {
  const p = PERMISSIONS[action];
  if (!p.roles.includes(access.role)) return false;
  if (access.auth.type !== 'api_key') return true;
  const held = p.capped === false ? (access.auth.keyScopes ?? access.auth.scopes) : access.scopes;
  if (held.includes(p.scope)) return true;
  // `verify` checks the keys of the key's OWN organization (PLATFORM.md), not of every organization
  // its creator manages: the alternative scope holds there only
  return p.orScope !== undefined && held.includes(p.orScope) && access.auth.org?.id === access.orgId;
}

/** Throws the matrix's refusal unless `access` may do `action`. */
export function authorizeOrg(access: OrgAccess, action: OrgAction): void {
  if (isAllowed(access, action)) return;
  const p = PERMISSIONS[action];
  if (!p.roles.includes(access.role) && p.denied === 404) throw new HttpError('NOT_FOUND', 'Not found.');
  if (!p.roles.includes(access.role)) {
    throw forbidden(`A ${access.role} of this organization cannot do this (${action}).`);
  }
  throw forbidden(`This key lacks the "${p.scope}" scope in this organization needed for ${action}.`);
}

/**
 * The auth context a key route works with inside the key's organization: the scopes become the
 * effective ones there, so the key rules above (never grant what you do not hold, wider keys are
 * 403) apply to what the caller holds in THAT organization.
 */
export function authInOrg(access: OrgAccess): AuthContext {
  return { ...access.auth, scopes: access.scopes };
}

/**
 * May `access` see and act on `row` at all? A key of another organization never gets here (404
 * earlier); a key another member created is 404 unless the caller manages the organization's keys.
 */
export function authorizeKeyVisibility(access: OrgAccess, row: Pick<KeyRow, 'user_id'>): void {
  if (row.user_id === access.auth.user.id) return;
  if (!PERMISSIONS['keys.manage_others'].roles.includes(access.role)) {
    throw new HttpError('NOT_FOUND', 'No such API key.');
  }
  authorizeOrg(access, 'keys.manage_others');
}

/**
 * Changing or removing another member: the matrix, and an admin never touches an owner nor makes
 * one (only owners do). The last-owner rule (409) is checked inside the change's transaction.
 */
export function authorizeMemberChange(
  access: OrgAccess,
  target: { userId: string; role: Role },
  action: 'members.update' | 'members.remove',
  newRole?: Role,
): void {
  if (action === 'members.remove' && target.userId === access.auth.user.id) {
    authorizeOrg(access, 'members.leave');
    return;
  }
  authorizeOrg(access, action);
  if (access.role !== 'owner' && (target.role === 'owner' || newRole === 'owner')) {
    throw forbidden('Only an owner can change, remove or appoint an owner.');
  }
}

/**
 * How much of an organization's audit log `access` reads: all of it (owners and admins, with
 * `admin` for a key), or only events it is the actor of or owns the target of. Throws when it may
 * read none (a key without `read`).
 */
export function auditScope(access: OrgAccess): 'all' | 'own' {
  authorizeOrg(access, 'audit.read');
  const v = VISIBILITY['audit.all'];
  const all =
    v.roles.includes(access.role) && (access.auth.type !== 'api_key' || access.scopes.includes(v.scope));
  return all ? 'all' : 'own';
}
