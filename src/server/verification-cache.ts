import type { KeyWithUser } from './store/keys.js';

interface Entry {
  value: KeyWithUser;
  at: number;
}

/**
 * Verified keys by hash, kept for `ttlMs` so a hot key costs no database read. The TTL bounds how
 * long another instance's revocation can go unnoticed; revocations on this instance (and, on
 * PostgreSQL, notified ones) drop the entry at once.
 */
export class VerificationCache {
  private readonly byHash = new Map<string, Entry>();
  private readonly hashById = new Map<string, string>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 50_000,
  ) {}

  get(hash: string, now: number): KeyWithUser | undefined {
    const e = this.byHash.get(hash);
    if (!e) return undefined;
    if (now - e.at >= this.ttlMs) {
      this.drop(hash);
      return undefined;
    }
    return e.value;
  }

  set(hash: string, value: KeyWithUser, now: number): void {
    if (this.ttlMs <= 0) return;
    if (this.byHash.size >= this.maxEntries) {
      // Map iterates in insertion order: evict the oldest
      const oldest = this.byHash.keys().next().value;
      if (oldest !== undefined) this.drop(oldest);
    }
    this.byHash.set(hash, { value, at: now });
    this.hashById.set(value.key.id, hash);
  }

  invalidateKey(keyId: string): void {
    const hash = this.hashById.get(keyId);
    if (hash !== undefined) this.drop(hash);
  }

  clear(): void {
    this.byHash.clear();
    this.hashById.clear();
  }

  private drop(hash: string): void {
    const e = this.byHash.get(hash);
    this.byHash.delete(hash);
    if (e) this.hashById.delete(e.value.key.id);
  }
}
