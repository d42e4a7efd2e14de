import type { FastifyInstance } from 'fastify';
import type { Store } from '../store/index.js';
import type { UsageRow } from '../store/usage.js';

const HOUR_MS = 3_600_000;
const LAST_USED_INTERVAL_MS = 60_000;

interface Bucket {
  hour: number;
  requests: number;
  rejected: number;
}

export interface UsageTrackerOptions {
  /** false: nothing is counted (last_used_at is still recorded) */
  count: boolean;
  onError: (err: unknown, what: string) => void;
}

/**
 * What one instance knows about the use of keys between flushes: per key and hour, `requests`
 * (authenticated requests and verifications of the key) and `rejected` (its refusals: rate limit,
 * scope), plus `last_used_at` written at most once a minute per key. Counting is two map operations
 * on the request path; the database sees one batched, additive upsert per flush, so several
 * instances' counts sum and a crash loses at most one flush interval.
 */
export class UsageTracker {
  private current = new Map<string, Bucket>();
  /** buckets of hours that ended before their flush */
  private closed: UsageRow[] = [];
  private readonly lastWritten = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly opts: UsageTrackerOptions,
  ) {}

  /** One accepted use of `keyId` (an authenticated request or a verification of it). */
  used(keyId: string, lastUsedAt: string | null, nowMs: number): void {
    this.noteLastUsed(keyId, lastUsedAt, nowMs);
    if (this.opts.count) this.bucket(keyId, nowMs).requests++;
  }

  /** One refusal of a use of `keyId` (rate limit, scope); its request was counted by `used`. */
  rejected(keyId: string, nowMs: number): void {
    if (this.opts.count) this.bucket(keyId, nowMs).rejected++;
  }

  private bucket(keyId: string, nowMs: number): Bucket {
    const hour = nowMs - (nowMs % HOUR_MS);
    let b = this.current.get(keyId);
    if (b === undefined || b.hour !== hour) {
      if (b !== undefined) this.closed.push(toRow(keyId, b));
      b = { hour, requests: 0, rejected: 0 };
      this.current.set(keyId, b);
    }
    return b;
  }

  private noteLastUsed(keyId: string, lastUsedAt: string | null, nowMs: number): void {
    let last = this.lastWritten.get(keyId);
    if (last === undefined) {
      last = lastUsedAt ? Date.parse(lastUsedAt) : 0;
      this.lastWritten.set(keyId, last);
    }
    if (nowMs - last < LAST_USED_INTERVAL_MS) return;
    this.lastWritten.set(keyId, nowMs);
    if (this.lastWritten.size > 100_000) this.lastWritten.clear();
    this.store.keys.touch(keyId, new Date(nowMs).toISOString()).catch((err) => {
      this.opts.onError(err, 'could not record last_used_at');
    });
  }

  /** Counts of this instance not yet written, for `keyId` (a usage read adds them). */
  pending(keyId: string): UsageRow[] {
    const rows = this.closed.filter((r) => r.key_id === keyId);
    const b = this.current.get(keyId);
    if (b) rows.push(toRow(keyId, b));
    return rows;
  }

  /** Writes everything counted so far (one transaction); on failure the counts are kept for the next try. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.flushOnce());
    return this.flushing;
  }

  private async flushOnce(): Promise<void> {
    const rows = this.closed;
    for (const [keyId, b] of this.current) rows.push(toRow(keyId, b));
    this.closed = [];
    this.current = new Map();
    const nonZero = mergeRows(rows).filter((r) => r.requests > 0 || r.rejected > 0);
    if (nonZero.length === 0) return;
    try {
      await this.store.transaction((tx) => tx.usage.add(nonZero));
    } catch (err) {
      this.opts.onError(err, 'could not write usage counters; keeping them for the next flush');
      this.closed.push(...nonZero);
    }
  }

  /** Flushes every `intervalMs` until `stop`. */
  start(intervalMs: number): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and writes what is left (app.close(), SIGTERM). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}

/**
 * One row per key and hour (counts kept from a failed flush meet the same key's bucket of that hour
 * again: PostgreSQL refuses an upsert that names one row twice), ordered by key and hour, so that
 * instances flushing at once lock rows in the same order and never deadlock each other.
 */
function mergeRows(rows: readonly UsageRow[]): UsageRow[] {
  const byKeyHour = new Map<string, UsageRow>();
  for (const r of rows) {
    const id = `${r.key_id} ${r.hour}`;
    const seen = byKeyHour.get(id);
    if (seen) {
      seen.requests += r.requests;
      seen.rejected += r.rejected;
    } else byKeyHour.set(id, { ...r });
  }
  return [...byKeyHour.values()].sort((a, b) =>
    a.key_id === b.key_id ? (a.hour < b.hour ? -1 : 1) : a.key_id < b.key_id ? -1 : 1,
  );
}

function toRow(keyId: string, b: Bucket): UsageRow {
  return {
    key_id: keyId,
    hour: new Date(b.hour).toISOString(),
    requests: b.requests,
    rejected: b.rejected,
  };
}

/**
 * Starts the tracker's flush timer, writes what is left when the app closes, and counts refusals
 * of API-key callers (403 scope, 429 rate limit) as `rejected`: an `onError` hook, so accepted
 * requests pay nothing for it.
 */
export function registerUsage(app: FastifyInstance): void {
  const { usage, config, clock } = app.breeze;
  usage.start(config.usageFlushMs);
  app.addHook('onClose', async () => {
    await usage.stop();
  });
  if (!config.countUsage) return;
  app.addHook('onError', (request, _reply, err, done) => {
    const keyId = request.auth?.keyId;
    const status = (err as { statusCode?: number }).statusCode;
    if (keyId && (status === 403 || status === 429)) usage.rejected(keyId, clock().getTime());
    done();
  });
}

/**
 * Requests per key over the last 24 hours (the current hour and the 23 before it), written and
 * not yet flushed by this instance: one grouped query per page of a key list.
 */
export async function requestsLast24h(
  app: FastifyInstance,
  keyIds: readonly string[],
): Promise<Map<string, number>> {
  const { store, usage, clock } = app.breeze;
  const now = clock().getTime();
  const from = new Date(now - (now % HOUR_MS) - 23 * HOUR_MS).toISOString();
  const counts = await store.usage.requestsSince(keyIds, from);
  for (const id of keyIds) {
    for (const row of usage.pending(id)) {
      if (row.hour >= from) counts.set(id, (counts.get(id) ?? 0) + row.requests);
    }
  }
  return counts;
}
