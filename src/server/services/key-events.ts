import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { HttpError } from '../../core/errors.js';
import type { StoreTx } from '../store/index.js';
import type { KeyEventRow, NewKeyEvent } from '../store/key-events.js';

/** Rows read per query when following or replaying. */
const PAGE = 500;
/** A stream whose client stopped reading and has this much queued is dropped (it reconnects and resumes). */
const MAX_BUFFERED = 1 << 20;
/**
 * Safety net for a lost or late notification (LISTEN reconnecting, a busy instance, or another
 * process on the same SQLite file). Well inside PLATFORM.md's one second, so that `key.revoked`
 * arrives in time even then: at 1 s, a full-suite run saw one revocation of 20 take 1,032 ms.
 */
const FOLLOW_POLL_MS = 250;
/** How long revocation events are kept for `Last-Event-ID` resumes. */
const RETENTION_MS = 7 * 86400_000;
/** On start, expiries this far back are announced (an instance restarting across a grace end). */
const STARTUP_LOOKBACK_MS = 10_000;
/** How far each look for expiries reaches back before the previous one. */
const EXPIRY_LAG_MS = 5_000;

/**
 * Records revocations in the change's own transaction (a revoked key without its event cannot
 * commit); the caller then publishes the key change (`KeyService.changed`), which wakes every
 * instance's hub.
 */
export async function recordRevocations(
  tx: StoreTx,
  events: readonly NewKeyEvent[],
  at: Date,
): Promise<void> {
  await tx.keyEvents.append(events, at.toISOString());
}

/** The frame of one event (`id` is what `Last-Event-ID` sends back). */
export function sseFrame(row: Pick<KeyEventRow, 'id' | 'key_id'>): string {
  return `id: ${row.id}\nevent: key.revoked\ndata: ${JSON.stringify({ key_id: row.key_id })}\n\n`;
}

interface Stream {
  orgId: string;
  keyId: string;
  /** the highest id sent (or skipped as older than the stream) */
  cursor: number;
  /** rows that arrived live while the replay was still running */
  queue: KeyEventRow[] | null;
  out: PassThrough;
  ping: NodeJS.Timeout;
}

/**
 * The live side of `GET /v1/keys/events` on one instance. One follower per instance reads new
 * `key_events` rows (woken by the store's key-change notifications, which on PostgreSQL arrive by
 * LISTEN/NOTIFY from every instance, plus a 250 ms poll while streams are open) and fans them out to
 * the open streams of each row's organization. It also watches for keys whose expiry just passed
 * (a rotation's grace end) and records their revocation once, whichever instance sees it first.
 */
export class KeyEventHub {
  private readonly streams = new Set<Stream>();
  private readonly byOut = new Map<PassThrough, Stream>();
  private readonly perKey = new Map<string, number>();
  private lastId = 0;
  private active: Promise<void> | null = null;
  private following = false;
  private followAgain = false;
  private followTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private expirySince: number;
  private lastPrune = 0;
  private closed = false;

  constructor(private readonly app: FastifyInstance) {
    this.expirySince = app.breeze.clock().getTime() - STARTUP_LOOKBACK_MS;
  }

  start(): void {
    const { store } = this.app.breeze;
    store.onKeyChange(() => {
      if (this.streams.size > 0) this.follow();
    });
  }

  /** Ends every stream (server closing) and stops the timers. */
  close(): void {
    this.closed = true;
    clearInterval(this.expiryTimer);
    clearInterval(this.followTimer);
    for (const s of [...this.streams]) this.drop(s, true);
  }

  get open(): number {
    return this.streams.size;
  }

  /**
   * Opens a stream for a `verify` key of `orgId`: replays the organization's events after
   * `lastEventId` (when given), then follows. Over `maxEventStreamsPerKey` open streams of one key: 429.
   */
  async openStream(orgId: string, keyId: string, lastEventId: number | undefined): Promise<PassThrough> {
    const { config } = this.app.breeze;
    const count = this.perKey.get(keyId) ?? 0;
    if (count >= config.maxEventStreamsPerKey) {
      throw new HttpError(
        'RATE_LIMITED',
        `This key already has ${count} event streams open (at most ${config.maxEventStreamsPerKey}); close one first.`,
        { headers: { 'retry-after': '5' } },
      );
    }
    if (this.closed)
      throw new HttpError('RATE_LIMITED', 'The server is shutting down.', {
        headers: { 'retry-after': '1' },
      });
    // the slot is taken before the first wait: streams of one key opened at once count each other
    this.perKey.set(keyId, count + 1);
    try {
      await this.activate();
    } catch (err) {
      this.releaseSlot(keyId);
      throw err;
    }
    const out = new PassThrough();
    const stream: Stream = {
      orgId,
      keyId,
      cursor: lastEventId ?? this.lastId,
      queue: lastEventId === undefined ? null : [],
      out,
      ping: setInterval(() => this.write(stream, ': ping\n\n'), config.eventsPingMs),
    };
    stream.ping.unref();
    this.streams.add(stream);
    this.byOut.set(out, stream);
    // EventSource reconnects after `retry` ms; the first comment tells a client the stream is live
    out.write(`retry: 1000\n: connected\n\n`);
    // the missed events are read before the stream is handed back, so they follow its headers at
    // once: a client trusts its cache again when the stream is up, and must not do so while its
    // replay is still being queried (events committed meanwhile wait in the stream's queue)
    if (lastEventId !== undefined) await this.replay(stream, lastEventId);
    return out;
  }

  /** The client went away (or the server closes): forget the stream. */
  drop(stream: Stream | PassThrough, end = false): void {
    const s = stream instanceof PassThrough ? this.byOut.get(stream) : stream;
    if (!s || !this.streams.delete(s)) return;
    this.byOut.delete(s.out);
    clearInterval(s.ping);
    this.releaseSlot(s.keyId);
    if (end) s.out.end();
    else s.out.destroy();
    if (this.streams.size === 0) {
      // idle: stop following; the next stream starts from the then-latest id
      clearInterval(this.followTimer);
      this.followTimer = undefined;
      clearInterval(this.expiryTimer);
      this.expiryTimer = undefined;
      this.active = null;
    }
  }

  private releaseSlot(keyId: string): void {
    const n = (this.perKey.get(keyId) ?? 1) - 1;
    if (n <= 0) this.perKey.delete(keyId);
    else this.perKey.set(keyId, n);
  }

  private activate(): Promise<void> {
    this.active ??= (async () => {
      this.lastId = await this.app.breeze.store.keyEvents.maxId();
      this.followTimer = setInterval(() => this.follow(), FOLLOW_POLL_MS);
      this.followTimer.unref();
      // Expiries are watched only while a stream is open here: with none open on any instance, no
      // verifier holds a cached answer older than a second (the SDK's rule while its stream is
      // down), so an expiry nobody hears of needs no event. An idle server (the resident embedded
      // one on a laptop) makes no query. On opening, look back a little for what just expired.
      const now = this.app.breeze.clock().getTime();
      this.expirySince = Math.max(this.expirySince, now - STARTUP_LOOKBACK_MS);
      void this.watchExpiries();
      this.expiryTimer = setInterval(() => void this.watchExpiries(), this.app.breeze.config.keyExpiryPollMs);
      this.expiryTimer.unref();
    })().catch((err) => {
      this.active = null;
      throw err;
    });
    return this.active;
  }

  private async replay(stream: Stream, after: number): Promise<void> {
    const { cache } = this.app.breeze;
    const repo = this.app.breeze.store.keyEvents;
    try {
      let cursor = after;
      for (;;) {
        const rows = await repo.after(stream.orgId, cursor, PAGE);
        for (const r of rows) {
          // committed while no stream was open here (the follower was idle and skipped it), and
          // possibly never notified (another process on the SQLite file): the client that hears
          // of it now may ask again at once
          cache.invalidateKey(r.key_id);
          this.send(stream, r);
        }
        if (rows.length < PAGE) break;
        cursor = rows[rows.length - 1]?.id ?? cursor;
      }
      const queued = stream.queue ?? [];
      stream.queue = null;
      for (const r of queued) this.send(stream, r);
    } catch (err) {
      this.app.log.warn({ err }, 'could not replay key events; dropping the stream');
      this.drop(stream);
    }
  }

  /** Reads rows after `lastId` and fans them out; concurrent wake-ups coalesce into one more round. */
  private follow(): void {
    if (this.following) {
      this.followAgain = true;
      return;
    }
    this.following = true;
    const { cache } = this.app.breeze;
    void (async () => {
      try {
        do {
          this.followAgain = false;
          for (;;) {
            const rows = await this.app.breeze.store.keyEvents.since(this.lastId, PAGE);
            for (const r of rows) {
              this.lastId = r.id;
              // a revocation read here may beat its notification (or stand in for a lost one, or
              // one another process on the SQLite file cannot send): drop the cached key before any
              // stream hears of it, so a verifier asking again right after gets the new answer
              cache.invalidateKey(r.key_id);
              for (const s of this.streams) {
                if (s.orgId !== r.org_id) continue;
                if (s.queue) s.queue.push(r);
                else this.send(s, r);
              }
            }
            if (rows.length < PAGE) break;
          }
        } while (this.followAgain && this.streams.size > 0);
      } catch (err) {
        this.app.log.warn({ err }, 'could not read key events');
      } finally {
        this.following = false;
      }
    })();
  }

  private send(stream: Stream, row: KeyEventRow): void {
    if (row.id <= stream.cursor) return;
    stream.cursor = row.id;
    this.write(stream, sseFrame(row));
    // the stream's own key was revoked (disabled, deleted, expired, its creator removed or demoted):
    // it may not read on. The client sees the event, then the end; a reconnect authenticates again
    // (401 or 403 for a key that lost its right, a new stream for one that kept it).
    if (row.key_id === stream.keyId) this.drop(stream, true);
  }

  private write(stream: Stream, text: string): void {
    if (!this.streams.has(stream)) return;
    if (stream.out.writableLength > MAX_BUFFERED) {
      this.drop(stream);
      return;
    }
    stream.out.write(text);
  }

  private expiryRunning = false;
  /** expiries this instance recorded (or found recorded) lately, by dedupe key */
  private readonly announced = new Map<string, number>();

  /** Records `expired` for keys whose `expires_at` passed since the last look (once across instances). */
  private async watchExpiries(): Promise<void> {
    if (this.expiryRunning || this.closed) return;
    this.expiryRunning = true;
    const { store, keys, clock } = this.app.breeze;
    try {
      const now = clock();
      // windows overlap by EXPIRY_LAG_MS: a change that set an expiry just before our last look
      // may have committed only after it (a rotation with grace 0); the dedupe key keeps it once
      const from = new Date(this.expirySince - EXPIRY_LAG_MS).toISOString();
      const to = now.toISOString();
      const expired = await store.keyEvents.expiredBetween(from, to);
      const events: NewKeyEvent[] = [];
      for (const k of expired) {
        const dedupe = `expired:${k.id}:${k.expires_at}`;
        if (!k.org_id || this.announced.has(dedupe)) continue;
        events.push({ org_id: k.org_id, key_id: k.id, reason: 'expired', dedupe });
      }
      if (events.length > 0) {
        const written = await store.transaction((tx) => tx.keyEvents.append(events, to));
        for (const e of events) this.announced.set(e.dedupe as string, now.getTime());
        for (const row of written) await keys.changed(row.key_id);
      }
      for (const [d, at] of this.announced) {
        if (now.getTime() - at > 2 * EXPIRY_LAG_MS) this.announced.delete(d);
      }
      this.expirySince = now.getTime();
      if (now.getTime() - this.lastPrune > 3600_000) {
        this.lastPrune = now.getTime();
        await store.keyEvents.prune(new Date(now.getTime() - RETENTION_MS).toISOString());
      }
    } catch (err) {
      if (!this.closed) this.app.log.warn({ err }, 'could not check for expired keys');
    } finally {
      this.expiryRunning = false;
    }
  }
}
