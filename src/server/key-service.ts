import { displayPrefix, generateApiKey } from '../core/api-key.js';
import { HttpError } from '../core/errors.js';
import type { SecretHasher } from '../core/hash.js';
import { newKeyId } from '../core/ids.js';
import type { CreatedVia, Scope } from '../core/types.js';
import type { Store, StoreTx } from './store/index.js';
import { type KeyRow, newKeyRow } from './store/keys.js';
import type { VerificationCache } from './verification-cache.js';

export interface MintOptions {
  userId: string;
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
    const apiKey = generateApiKey();
    const row = newKeyRow({
      id: newKeyId(now.getTime()),
      userId: opts.userId,
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

  /**
   * Rotates `old` (already checked usable): a new key with the same name, scopes and expiry; the old
   * one's expiry becomes min(its own, now + grace) — never later than it was.
   */
  async rotate(old: KeyRow, graceSeconds: number): Promise<{ minted: MintedKey; previous: KeyRow }> {
    const now = this.clock();
    const graceEnd = new Date(now.getTime() + graceSeconds * 1000).toISOString();
    const newExpiry = old.expires_at && old.expires_at < graceEnd ? old.expires_at : graceEnd;
    const result = await this.store.transaction(async (tx) => {
      const minted = await this.mint(
        {
          userId: old.user_id,
          name: old.name,
          scopes: old.scopes.split(' ') as Scope[],
          expiresAt: old.expires_at,
          createdVia: 'rotation',
          rotatedFrom: old.id,
        },
        tx,
      );
      // Check-and-set: only if the key is still as the caller saw it (not disabled, deleted or
      // rotated meanwhile), so a concurrent change makes this rotation fail instead of racing it.
      const res = await tx.db
        .updateTable('api_keys')
        .set({ expires_at: newExpiry })
        .where('id', '=', old.id)
        .where('disabled_at', 'is', null)
        .where((eb) =>
          old.expires_at === null ? eb('expires_at', 'is', null) : eb('expires_at', '=', old.expires_at),
        )
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) {
        throw new HttpError('CONFLICT', 'The key changed while it was being rotated; try again.');
      }
      const previous = await tx.keys.get(old.id);
      if (!previous) throw new Error('rotated key vanished');
      return { minted, previous };
    });
    await this.changed(old.id);
    return result;
  }

  /** Drops a key from every cache (this instance at once, others via the store's notification). */
  async changed(keyId: string): Promise<void> {
    this.cache.invalidateKey(keyId);
    await this.store.publishKeyChange(keyId);
  }
}
