import type { CompiledQuery } from 'kysely';
import { displayPrefix, generateApiKey } from '../core/api-key.js';
import { HttpError } from '../core/errors.js';
import type { SecretHasher } from '../core/hash.js';
import { newKeyId } from '../core/ids.js';
import type { CreatedVia, Scope } from '../core/types.js';
import { type AuditBy, type AuditService, SYSTEM_BY } from './services/audit.js';
import { recordRevocations } from './services/key-events.js';
import type { Store, StoreTx } from './store/index.js';
import { type KeyRow, newKeyRow, scopesOf, statusOf } from './store/keys.js';
import type { ProjectRow } from './store/orgs.js';
import type { VerificationCache } from './verification-cache.js';

export interface MintOptions {
  userId: string;
  /**
   * The project the key belongs to (its organization follows). Default: the user's personal
   * organization's `default` project (CLI logins, email codes). Callers check that the user may
   * create keys there.
   */
  projectId?: string;
  name: string;
  scopes: Scope[];
  expiresAt: string | null;
  /**
   * A lifetime instead of `expiresAt`: the key expires this many seconds after its `created_at`,
   * exactly (the clock read once, when the key is made, not before a transaction began).
   */
  expiresInS?: number;
  createdVia: CreatedVia;
  rotatedFrom?: string | null;
  /** who mints it, from where (the `key.created` event); default: the server itself */
  by?: AuditBy;
}

/** The fields a key update may change. */
export type KeyPatch = Partial<Pick<KeyRow, 'name' | 'scopes'>>;

export interface MintedKey {
  row: KeyRow;
  /** the plaintext: returned to the caller once, never stored */
  apiKey: string;
}

/** Mints, rotates and revokes keys; the one place that turns a plaintext key into a stored hash. */
export class KeyService {
  constructor(
    private readonly store: Store,
    private readonly hasher: SecretHasher,
    private readonly cache: VerificationCache,
    private readonly clock: () => Date,
    /**
     * The audit log: every change below records its event in the change's own transaction. Only
     * test helpers that seed keys straight into a store build a KeyService without one.
     */
    private readonly audit?: AuditService,
  ) {}

  hash(apiKey: string): string {
    return this.hasher(apiKey);
  }

  /**
   * Mints a key and records `key.created` (a rotation's successor: `key.rotated`, by rotate) in the
   * same transaction: `tx` when given, else a transaction of its own.
   */
  async mint(opts: MintOptions, tx?: StoreTx): Promise<MintedKey> {
    if (!tx) return this.store.transaction((t) => this.mint(opts, t));
    const now = this.clock();
    const project = await this.projectOf(opts, tx, now);
    const apiKey = generateApiKey();
    const row = newKeyRow({
      id: newKeyId(now.getTime()),
      userId: opts.userId,
      orgId: project.org_id,
      projectId: project.id,
      name: opts.name,
      prefix: displayPrefix(apiKey),
      hash: this.hasher(apiKey),
      scopes: opts.scopes,
      createdAt: now.toISOString(),
      expiresAt:
        opts.expiresInS === undefined
          ? opts.expiresAt
          : new Date(now.getTime() + opts.expiresInS * 1000).toISOString(),
      rotatedFrom: opts.rotatedFrom ?? null,
      createdVia: opts.createdVia,
    });
    if (opts.createdVia === 'rotation') {
      await tx.keys.insert(row);
    } else {
      // the insert goes with the event's (one round trip on PostgreSQL: see AuditRepo.insert)
      await this.record(
        tx,
        opts.by,
        'key.created',
        row,
        {
          name: row.name,
          prefix: row.prefix,
          scopes: row.scopes.split(' '),
          expires_at: row.expires_at,
          created_via: row.created_via,
        },
        tx.keys.insertQuery(row),
      );
    }
    return { row, apiKey };
  }

  private async record(
    tx: StoreTx,
    by: AuditBy | undefined,
    action: 'key.created' | 'key.updated' | 'key.rotated' | 'key.disabled' | 'key.enabled' | 'key.deleted',
    row: KeyRow,
    details: Record<string, unknown>,
    /** the change's statement when it has not run yet: it runs here, with the event or alone */
    change?: CompiledQuery,
  ): Promise<void> {
    if (!this.audit || !row.org_id) {
      if (change) await tx.db.executeQuery(change);
      return;
    }
    const { meta, actor } = by ?? SYSTEM_BY;
    await this.audit.record(
      tx,
      meta,
      {
        action,
        orgId: row.org_id,
        projectId: row.project_id,
        actor,
        target: { type: 'key', id: row.id, ownerId: row.user_id },
        details,
      },
      change,
    );
  }

  /**
   * Renames a key or changes its scopes; records `key.updated`. Undefined when the key is gone.
   * `authorize` (the caller's check, authz.ts) is asked again of the key as it is inside the
   * transaction, and throws to refuse the change.
   */
  async update(
    row: KeyRow,
    patch: KeyPatch,
    by?: AuditBy,
    authorize?: (current: KeyRow) => void,
  ): Promise<KeyRow | undefined> {
    const updated = await this.store.transaction(async (tx) => {
      // what the change replaces is the key as it is now, not as the caller read it before: a
      // concurrent change (a widening) may have landed in between (locked on PostgreSQL; SQLite's
      // write transaction excludes the others), and whether the caller may change it at all is
      // judged on that key too (a key widened beyond the caller's scopes is no longer theirs to change)
      const before = await tx.keys.get(row.id, true);
      if (!before) return undefined;
      authorize?.(before);
      const after = await tx.keys.update(row.id, patch);
      if (!after) return undefined;
      // fewer scopes than before: verifiers holding it in a cache hear of it (key.revoked)
      const narrowed =
        patch.scopes !== undefined && scopesOf(before).some((s) => !patch.scopes?.split(' ').includes(s));
      if (narrowed && row.org_id) {
        await recordRevocations(
          tx,
          [{ org_id: row.org_id, key_id: row.id, reason: 'narrowed' }],
          this.clock(),
        );
      }
      const changes: Record<string, unknown> = {};
      if (patch.name !== undefined && patch.name !== before.name)
        changes.name = { from: before.name, to: after.name };
      if (patch.scopes !== undefined && patch.scopes !== before.scopes) {
        changes.scopes = { from: before.scopes.split(' '), to: after.scopes.split(' ') };
      }
      await this.record(tx, by, 'key.updated', after, { name: after.name, prefix: after.prefix, changes });
      return after;
    });
    if (updated) await this.changed(row.id);
    return updated;
  }

  /**
   * Disables (`disabledAt` a time) or enables (null) a key; records `key.disabled`/`key.enabled`.
   * A key that already is so (a concurrent call changed it first) is returned as it is, with no
   * second event. Undefined when the key is gone.
   */
  async setDisabled(row: KeyRow, disabledAt: string | null, by?: AuditBy): Promise<KeyRow | undefined> {
    const result = await this.store.transaction(async (tx) => {
      if (!(await tx.keys.setDisabled(row.id, disabledAt))) {
        const current = await tx.keys.get(row.id);
        return current && { row: current, changed: false };
      }
      const after = await tx.keys.get(row.id);
      if (!after) return undefined;
      if (disabledAt && row.org_id) {
        await recordRevocations(
          tx,
          [{ org_id: row.org_id, key_id: row.id, reason: 'disabled' }],
          this.clock(),
        );
      }
      await this.record(tx, by, disabledAt ? 'key.disabled' : 'key.enabled', after, {
        name: after.name,
        prefix: after.prefix,
      });
      return { row: after, changed: true };
    });
    if (result?.changed) await this.changed(row.id);
    return result?.row;
  }

  /** Deletes a key for good; records `key.deleted`. False when it was gone already. */
  async delete(row: KeyRow, by?: AuditBy): Promise<boolean> {
    const deleted = await this.store.transaction(async (tx) => {
      if (!(await tx.keys.delete(row.id))) return false;
      if (row.org_id) {
        await recordRevocations(
          tx,
          [{ org_id: row.org_id, key_id: row.id, reason: 'deleted' }],
          this.clock(),
        );
      }
      await this.record(tx, by, 'key.deleted', row, { name: row.name, prefix: row.prefix });
      return true;
    });
    await this.changed(row.id);
    return deleted;
  }

  private async projectOf(opts: MintOptions, tx: StoreTx, now: Date): Promise<ProjectRow> {
    if (opts.projectId !== undefined) {
      // locked against a concurrent deletion of the project (see OrgsRepo.project)
      const project = await tx.orgs.project(opts.projectId, true);
      if (!project) throw new HttpError('NOT_FOUND', 'No such project.');
      return project;
    }
    const user = await tx.users.get(opts.userId);
    if (!user) throw new HttpError('NOT_FOUND', 'No such user.');
    return (await tx.orgs.ensurePersonal(user, now)).project;
  }

  /**
   * Rotates `old`: a new key with the same name, scopes and expiry; the old one's expiry becomes
   * min(its own, now + grace) — never later than it was. A check-and-set: the old key is marked
   * rotated by one conditional UPDATE (only if it is still enabled, unexpired and not rotated yet)
   * before the successor is minted in the same transaction, so of concurrent rotations exactly one
   * wins; the others get 409 (404 when the key was deleted meanwhile).
   */
  async rotate(
    old: KeyRow,
    graceSeconds: number,
    by?: AuditBy,
  ): Promise<{ minted: MintedKey; previous: KeyRow }> {
    const now = this.clock();
    const graceEnd = new Date(now.getTime() + graceSeconds * 1000).toISOString();
    const result = await this.store.transaction(async (tx) => {
      if (!(await tx.keys.markRotated(old.id, now.toISOString(), graceEnd))) return null;
      const minted = await this.mint(
        {
          userId: old.user_id,
          // the successor stays where its predecessor was (a key from before organizations has
          // none until migration 003 fills it; then the creator's personal default)
          ...(old.project_id ? { projectId: old.project_id } : {}),
          name: old.name,
          scopes: old.scopes.split(' ') as Scope[],
          expiresAt: old.expires_at,
          createdVia: 'rotation',
          rotatedFrom: old.id,
        },
        tx,
      );
      const previous = await tx.keys.get(old.id);
      if (!previous) throw new Error('rotated key vanished');
      await this.record(tx, by, 'key.rotated', previous, {
        name: previous.name,
        prefix: previous.prefix,
        new_key_id: minted.row.id,
        new_prefix: minted.row.prefix,
        grace_period_s: graceSeconds,
        old_expires_at: previous.expires_at,
      });
      return { minted, previous };
    });
    if (!result) throw await this.whyNotRotated(old.id, now);
    await this.changed(old.id);
    return result;
  }

  private async whyNotRotated(keyId: string, now: Date): Promise<HttpError> {
    const row = await this.store.keys.get(keyId);
    if (!row) return new HttpError('NOT_FOUND', 'No such API key.');
    if (row.rotated_at) {
      return new HttpError('CONFLICT', 'This key was already rotated: rotate its successor instead.');
    }
    const status = statusOf(row, now);
    if (status === 'active' || status === 'expiring') {
      return new HttpError('CONFLICT', 'The key changed while it was being rotated; try again.');
    }
    return new HttpError(
      'CONFLICT',
      `Cannot rotate ${status === 'expired' ? 'an expired' : `a ${status}`} key.`,
    );
  }

  /** Drops a key from every cache (this instance at once, others via the store's notification). */
  async changed(keyId: string): Promise<void> {
    this.cache.invalidateKey(keyId);
    await this.store.publishKeyChange(keyId);
  }
}
