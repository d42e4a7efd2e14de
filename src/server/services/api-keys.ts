import { HttpError } from '../../core/errors.js';
import type { ApiKeyInfo, KeyStatus, Scope } from '../../core/types.js';
import { normaliseScopes } from '../../core/types.js';
import {
  authInOrg,
  authorizeKeyAction,
  authorizeKeyVisibility,
  authorizeOrg,
  isAllowed,
  type OrgAccess,
  requireKeyManager,
  requireScopesWithin,
  rotationGrace,
} from '../authz.js';
import type { AuthContext, ServerContext } from '../context.js';
import { type KeyRow, toKeyInfo } from '../store/keys.js';
import type { AuditBy } from './audit.js';
import { OrgService } from './orgs.js';

export const MAX_EXPIRY_S = 10 * 365 * 86400;
export const DEFAULT_GRACE_S = 3600;

export interface CreateKeyInput {
  name: string;
  scopes?: Scope[];
  expires_at?: string;
  expires_in_s?: number;
  project_id?: string;
}

export interface KeyPatch {
  name?: string;
  scopes?: Scope[];
}

export interface ListKeysInput {
  limit: number;
  cursor?: string;
  status?: KeyStatus;
  project_id?: string;
  org_id?: string;
}

function notFound(): HttpError {
  return new HttpError('NOT_FOUND', 'No such API key.');
}

export function encodeCursor(id: string): string {
  return Buffer.from(id, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^key_[0-9A-Z]{26}$/.test(id)) {
    throw new HttpError('VALIDATION_FAILED', 'Invalid cursor: pass the next_cursor of a previous page.', {
      details: [{ field: 'querystring.cursor', message: 'is not a cursor issued by this server' }],
    });
  }
  return id;
}

/**
 * The key operations of API.md "API keys", as the JSON routes and the dashboard pages both call
 * them: load (with visibility), list, create, patch, rotate, disable/enable, delete. Every check is
 * asked of authz.ts; the routes only parse and shape answers. Every write goes through KeyService
 * with an `AuditBy` (the route's `byRequest(request, caller)`, the page's `pageBy`), so its audit
 * event and any `key.revoked` event land in the write's own transaction.
 */
export class ApiKeyOps {
  readonly orgs: OrgService;

  constructor(private readonly ctx: ServerContext) {
    this.orgs = new OrgService(ctx);
  }

  info(row: KeyRow): ApiKeyInfo {
    return toKeyInfo(row, this.ctx.clock());
  }

  /**
   * A key the caller may see, and the caller as it acts in that key's organization (scopes capped
   * by its role there). A key of an organization the caller is no member of, or one another member
   * created when the caller does not manage the organization's keys, is 404.
   */
  async load(
    auth: AuthContext,
    keyId: string,
  ): Promise<{ row: KeyRow; auth: AuthContext; access: OrgAccess }> {
    const row = await this.ctx.store.keys.get(keyId);
    if (!row?.org_id) throw notFound();
    const access = await this.orgs.access(auth, row.org_id).catch((err: unknown) => {
      throw err instanceof HttpError && err.code === 'NOT_FOUND' ? notFound() : err;
    });
    authorizeKeyVisibility(access, row);
    return { row, auth: authInOrg(access), access };
  }

  /** One page of keys, newest first: the whole organization's for managers, else the caller's own. */
  async list(
    caller: AuthContext,
    q: ListKeysInput,
  ): Promise<{ rows: KeyRow[]; nextCursor: string | null; access: OrgAccess }> {
    const { project_id: projectId, org_id: orgId } = q;
    const access = projectId
      ? (await this.orgs.project(caller, projectId)).access
      : await this.orgs.defaultAccess(caller, orgId);
    if (projectId && orgId && access.orgId !== orgId) throw new HttpError('NOT_FOUND', 'No such project.');
    const auth = authInOrg(access);
    requireKeyManager(auth);
    // owners and admins see every key of the organization, other members their own
    const all = isAllowed(access, 'keys.manage_others');
    const filter = {
      orgId: access.orgId,
      ...(all ? {} : { userId: caller.user.id }),
      ...(projectId ? { projectId } : {}),
    };
    const rows = await this.ctx.store.keys.list(filter, {
      limit: q.limit + 1,
      beforeId: q.cursor ? decodeCursor(q.cursor) : undefined,
      status: q.status,
      now: this.ctx.clock(),
    });
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return { rows: page, nextCursor: rows.length > q.limit && last ? encodeCursor(last.id) : null, access };
  }

  /** Creates a key of the caller; the plaintext is in the answer only. */
  async create(
    caller: AuthContext,
    body: CreateKeyInput,
    by: AuditBy,
  ): Promise<{ row: KeyRow; apiKey: string }> {
    // default: the calling key's project; for a session or JWT, the personal `default` project
    const { projectId, access } = await this.orgs.keyProject(caller, body.project_id);
    const auth = authInOrg(access);
    requireKeyManager(auth);
    authorizeOrg(access, 'keys.create');
    const scopes = normaliseScopes(body.scopes ?? ['read']);
    requireScopesWithin(auth, scopes);
    const expiresAt = resolveExpiry(body, this.ctx.clock());
    return this.ctx.keys.mint({
      userId: caller.user.id,
      projectId,
      name: body.name.trim(),
      scopes,
      expiresAt,
      // a lifetime counts from the key's created_at (resolveExpiry's is only a check of the input)
      ...(body.expires_in_s !== undefined ? { expiresInS: body.expires_in_s } : {}),
      createdVia: 'api',
      by,
    });
  }

  /** Renames a key or changes its scopes. */
  async update(caller: AuthContext, keyId: string, body: KeyPatch, by: AuditBy): Promise<KeyRow> {
    const { row, auth } = await this.load(caller, keyId);
    authorizeKeyAction(auth, row, 'update');
    const patch: Partial<KeyRow> = {};
    if (body.name !== undefined) patch.name = body.name.trim();
    if (body.scopes !== undefined) {
      const scopes = normaliseScopes(body.scopes);
      requireScopesWithin(auth, scopes);
      patch.scopes = scopes.join(' ');
    }
    if (Object.keys(patch).length === 0) return row;
    // asked again of the key as the change's transaction finds it (a concurrent widening may have
    // made it wider than the caller's scopes since the read above)
    const updated = await this.ctx.keys.update(row, patch, by, (current) =>
      authorizeKeyAction(auth, current, 'update'),
    );
    if (!updated) throw notFound();
    return updated;
  }

  /** Rotates a key; the new plaintext is in the answer only. */
  async rotate(
    caller: AuthContext,
    keyId: string,
    graceS: number,
    by: AuditBy,
  ): Promise<{ row: KeyRow; apiKey: string; previous: KeyRow }> {
    const { row, auth } = await this.load(caller, keyId);
    // the successor inherits the rotated key's scopes and its plaintext goes to the caller: rotating
    // a wider key than one's own would mint a key with scopes the caller does not hold
    authorizeKeyAction(auth, row, 'rotate');
    const grace = rotationGrace(auth, row, graceS);
    const { minted, previous } = await this.ctx.keys.rotate(row, grace, by);
    return { row: minted.row, apiKey: minted.apiKey, previous };
  }

  /** Disables or re-enables a key (idempotent). */
  async setEnabled(
    caller: AuthContext,
    keyId: string,
    action: 'disable' | 'enable',
    by: AuditBy,
  ): Promise<KeyRow> {
    const { row, auth } = await this.load(caller, keyId);
    authorizeKeyAction(auth, row, action);
    const disabledAt = action === 'disable' ? (row.disabled_at ?? this.ctx.clock().toISOString()) : null;
    if (disabledAt === row.disabled_at) return row;
    const updated = await this.ctx.keys.setDisabled(row, disabledAt, by);
    if (!updated) throw notFound();
    return updated;
  }

  /** Deletes a key for good. */
  async delete(caller: AuthContext, keyId: string, by: AuditBy): Promise<KeyRow> {
    const { row, auth } = await this.load(caller, keyId);
    authorizeKeyAction(auth, row, 'delete');
    // a concurrent delete won between the read and ours: the key no longer exists (one 204 only)
    if (!(await this.ctx.keys.delete(row, by))) throw notFound();
    return row;
  }
}

export function resolveExpiry(body: CreateKeyInput, now: Date): string | null {
  if (body.expires_at !== undefined && body.expires_in_s !== undefined) {
    throw new HttpError('VALIDATION_FAILED', 'Give expires_at or expires_in_s, not both.', {
      details: [{ field: 'body.expires_at', message: 'conflicts with expires_in_s' }],
    });
  }
  if (body.expires_in_s !== undefined)
    return new Date(now.getTime() + body.expires_in_s * 1000).toISOString();
  if (body.expires_at !== undefined) {
    const t = Date.parse(body.expires_at);
    if (Number.isNaN(t) || t <= now.getTime() || t > now.getTime() + MAX_EXPIRY_S * 1000) {
      throw new HttpError('VALIDATION_FAILED', 'expires_at must be in the future (at most 10 years ahead).', {
        details: [{ field: 'body.expires_at', message: 'out of range' }],
      });
    }
    return new Date(t).toISOString();
  }
  return null;
}
