import { BreezeVerifyError } from './errors.js';
import { SseParser } from './sse.js';

export interface RevocationStreamOptions {
  url: string;
  apiKey: string;
  fetch: typeof fetch;
  /** the stream counts as dead after this long without a byte (the server pings every 15 s) */
  idleTimeoutMs: number;
  /**
   * a connection silent for longer than this is not trusted to carry revocations (`connected` is
   * false) while it waits out `idleTimeoutMs`: the server pings at least every 15 s, so a longer
   * silence means a connection that may be dead without knowing it (a dropped NAT entry, a proxy)
   */
  quietLimitMs: number;
  /** first reconnection delay; doubles per failed attempt up to `maxBackoffMs` (with jitter) */
  minBackoffMs: number;
  maxBackoffMs: number;
  onRevoked(keyId: string): void;
  /** the stream is connected; `resumed` is false when events may have been missed (no Last-Event-ID) */
  onUp(resumed: boolean): void;
  onDown(): void;
  onError(err: Error): void;
}

/** A connection up this long was a good one: the next reconnection starts from the shortest delay. */
const STABLE_MS = 5000;

/**
 * `GET /v1/keys/events`, kept open: reconnects with exponential backoff and jitter, resumes with
 * `Last-Event-ID`, and treats a silent connection (no ping within `idleTimeoutMs`) as dropped.
 */
export class RevocationStream {
  private closed = false;
  private up = false;
  private lastActivity = 0;
  private abort: AbortController | null = null;
  private wake: (() => void) | null = null;
  private serverRetryMs = 0;
  private lastEventId = '';
  private readonly done: Promise<void>;

  constructor(private readonly o: RevocationStreamOptions) {
    this.done = this.run();
  }

  get connected(): boolean {
    return this.up && performance.now() - this.lastActivity <= this.o.quietLimitMs;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.abort?.abort();
    this.wake?.();
    await this.done;
  }

  /** Drops the current connection (it reconnects and resumes): for tests and for callers that know better. */
  reconnect(): void {
    this.abort?.abort();
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.closed) {
      const abort = new AbortController();
      this.abort = abort;
      let idle: NodeJS.Timeout | undefined;
      let upAt: number | undefined;
      const touch = () => {
        this.lastActivity = performance.now();
        if (idle) idle.refresh();
      };
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream', 'x-api-key': this.o.apiKey };
        const resumeFrom = this.lastEventId;
        if (resumeFrom) headers['last-event-id'] = resumeFrom;
        idle = setTimeout(() => abort.abort(), this.o.idleTimeoutMs);
        idle.unref?.();
        // a redirect is never followed (it would carry the verifier's key elsewhere): the stream is down
        const res = await this.o.fetch(this.o.url, { headers, redirect: 'manual', signal: abort.signal });
        const type = res.headers.get('content-type') ?? '';
        if (res.status !== 200 || !type.startsWith('text/event-stream') || !res.body) {
          await res.body?.cancel().catch(() => {});
          throw new BreezeVerifyError(
            res.status === 401 ? 'UNAUTHORIZED' : res.status === 403 ? 'FORBIDDEN' : 'BAD_RESPONSE',
            `The Breeze revocation stream answered ${res.status}${type ? ` (${type.split(';')[0]})` : ''}.`,
            { status: res.status },
          );
        }
        touch();
        this.up = true;
        upAt = performance.now();
        this.o.onUp(resumeFrom !== '');
        const parser = new SseParser({
          onActivity: touch,
          onRetry: (ms) => {
            this.serverRetryMs = Math.min(ms, 60_000);
          },
          onEvent: (ev) => {
            if (ev.id) this.lastEventId = ev.id;
            if (ev.event !== 'key.revoked') return;
            let keyId: unknown;
            try {
              keyId = (JSON.parse(ev.data) as { key_id?: unknown })?.key_id;
            } catch {
              return;
            }
            if (typeof keyId === 'string' && keyId.length > 0 && keyId.length <= 128) this.o.onRevoked(keyId);
          },
        });
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          touch();
          parser.feed(value);
        }
        if (!this.closed)
          this.o.onError(new BreezeVerifyError('UNREACHABLE', 'The Breeze revocation stream ended.'));
      } catch (err) {
        if (!this.closed) {
          this.o.onError(
            err instanceof BreezeVerifyError
              ? err
              : new BreezeVerifyError('UNREACHABLE', 'The Breeze revocation stream is down.', { cause: err }),
          );
        }
      } finally {
        if (idle) clearTimeout(idle);
        abort.abort();
        if (this.up) {
          this.up = false;
          this.o.onDown();
        }
      }
      if (this.closed) break;
      // only a connection that stayed up a while starts the backoff afresh: one that a server or a
      // proxy accepts and ends at once is a failure like any other (else: a reconnection storm)
      if (upAt !== undefined && performance.now() - upAt >= STABLE_MS) attempt = 0;
      const base = Math.min(this.o.maxBackoffMs, this.o.minBackoffMs * 2 ** Math.min(attempt, 20));
      const delay = Math.max(this.serverRetryMs, base / 2 + Math.random() * (base / 2));
      attempt++;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        t.unref?.();
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = null;
    }
  }
}
