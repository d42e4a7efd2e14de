import { displayPrefix, generateApiKey } from '../core/api-key.js';
import { HttpError } from '../core/errors.js';
import type { SecretHasher } from '../core/hash.js';
import { newKeyId } from '../core/ids.js';
import type { CreatedVia, Scope } from '../core/types.js';
import type { Store, StoreTx } from './store/index.js';
import { type KeyRow, newKeyRow, statusOf } from './store/keys.js';
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
  createdVia: CreatedVia;
  rotatedFrom?: string | null;
}

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
  ) {}

  hash(apiKey: string): string {
    return this.hasher(apiKey);
  }

  async mint(opts: MintOptions, tx: StoreTx = this.store): Promise<MintedKey> {
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
      expiresAt: opts.expiresAt,
      rotatedFrom: opts.rotatedFrom ?? null,
      createdVia: opts.createdVia,
    });
    await tx.keys.insert(row);
    return { row, apiKey };
  }

  private async projectOf(opts: MintOptions, tx: StoreTx, now: Date): Promise<ProjectRow> {
    if (opts.projectId !== undefined) {
      const project = await tx.orgs.project(opts.projectId);
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
  async rotate(old: KeyRow, graceSeconds: number): Promise<{ minted: MintedKey; previous: KeyRow }> {
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
    return new HttpError('CONFLICT', `Cannot rotate a ${statusOf(row, now)} key.`);
  }

  /** Drops a key from every cache (this instance at once, others via the store's notification). */
  async changed(keyId: string): Promise<void> {
    this.cache.invalidateKey(keyId);
    await this.store.publishKeyChange(keyId);
  }
}
