import type { KeyWithUser } from './store/keys.js';

interface Entry {
  value: KeyWithUser;
  at: number;
}

/** How many recent invalidations are remembered for reads still in flight (see `set`). */
const MAX_DROPPED = 10_000;

/**
 * Verified keys by hash, kept for `ttlMs` so a hot key costs no database read. The TTL bounds how
 * long another instance's revocation can go unnoticed; revocations on this instance (and, on
 * PostgreSQL, notified ones) drop the entry at once.
 *
 * A read that started before a key was dropped must not put its older answer back: take
 * `generation` before reading and pass it to `set`, which skips a key dropped since.
 */
export class VerificationCache {
  private readonly byHash = new Map<string, Entry>();
  private readonly hashById = new Map<string, string>();
  /** counts invalidations; a read notes it before it starts */
  private gen = 0;
  /** key id -> the generation its last invalidation made (the most recent MAX_DROPPED) */
  private readonly droppedAt = new Map<string, number>();
  /** reads that started before this generation are not cached: a drop they may have missed was forgotten */
  private floor = 0;

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

  /** Note this before reading a key from the store, and hand it to `set` with what the read found. */
  get generation(): number {
    return this.gen;
  }

  /**
   * Caches what a read found; `readAt`: `generation` as it was when the read started. Skipped
   * when the key was dropped since (its revocation committed while the read was in flight).
   */
  set(hash: string, value: KeyWithUser, now: number, readAt: number): void {
    if (this.ttlMs <= 0) return;
    if (readAt < this.gen) {
      if (readAt < this.floor) return;
      const dropped = this.droppedAt.get(value.key.id);
      if (dropped !== undefined && dropped > readAt) return;
    }
    if (this.byHash.size >= this.maxEntries) {
      // Map iterates in insertion order: evict the oldest
      const oldest = this.byHash.keys().next().value;
      if (oldest !== undefined) this.drop(oldest);
    }
    this.byHash.set(hash, { value, at: now });
    this.hashById.set(value.key.id, hash);
  }

  invalidateKey(keyId: string): void {
    this.gen++;
    this.droppedAt.delete(keyId);
    this.droppedAt.set(keyId, this.gen);
    if (this.droppedAt.size > MAX_DROPPED) {
      // forget the oldest; a read older than it is then not cached at all
      const [oldestId, oldestGen] = this.droppedAt.entries().next().value as [string, number];
      this.droppedAt.delete(oldestId);
      this.floor = oldestGen;
    }
    const hash = this.hashById.get(keyId);
    if (hash !== undefined) this.drop(hash);
  }

  clear(): void {
    this.byHash.clear();
    this.hashById.clear();
    this.gen++;
    this.floor = this.gen;
    this.droppedAt.clear();
  }

  private drop(hash: string): void {
    const e = this.byHash.get(hash);
    this.byHash.delete(hash);
    if (e) this.hashById.delete(e.value.key.id);
  }
}
