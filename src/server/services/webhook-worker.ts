import { isIP } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { Agent, request } from 'undici';
import type { JwtService } from '../jwt.js';
import type { Store, StoreTx } from '../store/index.js';
import { type DeliveryRow, type DueDelivery, WebhooksRepo } from '../store/webhooks.js';
import { guardedLookup, parseTargetUrl, resolveTarget, type TargetPolicy } from './webhook-target.js';
import type { WebhookTuning } from './webhook-tuning.js';

export type { WebhookTuning } from './webhook-tuning.js';

const DAY_MS = 86_400_000;

export const DEFAULT_TUNING: Required<Omit<WebhookTuning, 'resolve'>> = {
  pollMs: 15_000,
  retryBaseMs: 10_000,
  maxRetryDelayMs: 3 * 3600_000,
  maxAgeMs: 24 * 3600_000,
  timeoutMs: 10_000,
  concurrency: 8,
  expiryScanMs: 10 * 60_000,
  deliveryRetentionMs: 30 * DAY_MS,
};

/** The shortest sleep between two scans (a row due now but not claimable must not spin the loop). */
const MIN_WAIT_MS = 50;
/** How long a claimed delivery stays ours: one attempt's limit plus margin for the bookkeeping. */
const LEASE_MARGIN_MS = 30_000;
/** At most this much of an answer is read (and then dropped): receivers answer 2xx, not content. */
const MAX_ANSWER_BYTES = 64 * 1024;
/** `key.expiring` thresholds, nearest first (a key within 1 day gets that one, never the 7-day one late). */
export const EXPIRY_THRESHOLDS = [
  { name: '1d', ms: DAY_MS },
  { name: '7d', ms: 7 * DAY_MS },
] as const;

/** The wait before attempt `attempts + 1`, after `attempts` failures (1 -> base, then doubling). */
export function retryDelayMs(
  attempts: number,
  t: Pick<Required<WebhookTuning>, 'retryBaseMs' | 'maxRetryDelayMs'>,
): number {
  return Math.min(t.retryBaseMs * 2 ** Math.max(0, attempts - 1), t.maxRetryDelayMs);
}

export interface WorkerDeps {
  store: Store;
  jwt: Pick<JwtService, 'signDetached'>;
  clock: () => Date;
  log: FastifyBaseLogger;
  allowPrivate: boolean;
  tuning?: WebhookTuning;
  /** enqueues a `key.expiring` event for the key's organization, inside `tx` */
  enqueueExpiring(tx: StoreTx, key: ExpiringKey, threshold: string): Promise<void>;
}

export interface ExpiringKey {
  id: string;
  org_id: string | null;
  project_id: string | null;
  user_id: string;
  name: string;
  prefix: string;
  expires_at: string | null;
}

/**
 * Delivers webhook events at least once. Deliveries are rows (`webhook_deliveries`), so nothing is
 * lost across restarts: each instance's worker claims due rows with a lease (a compare-and-set
 * update, safe with several instances on one database), posts the signed body, and records the
 * outcome: 2xx is delivered; anything else (3xx included: redirects are not followed), a timeout or
 * a refused target is a failure retried with exponential backoff until 24 h after the event. A
 * server that closes aborts the attempts in flight and gives their leases back uncounted, so the
 * next start delivers them. The same worker runs the `key.expiring` scheduler.
 */
export class WebhookWorker {
  readonly tuning: Required<Omit<WebhookTuning, 'resolve'>> & Pick<WebhookTuning, 'resolve'>;
  private readonly repo: WebhooksRepo;
  private readonly agent: Agent;
  private readonly policy: TargetPolicy;
  private readonly stopping = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private again = false;
  private started = false;

  constructor(private readonly deps: WorkerDeps) {
    this.tuning = { ...DEFAULT_TUNING, ...deps.tuning };
    this.repo = new WebhooksRepo(deps.store.db);
    this.policy = { allowPrivate: deps.allowPrivate, resolve: this.tuning.resolve };
    this.agent = new Agent({
      connect: { lookup: guardedLookup(this.policy), timeout: this.tuning.timeoutMs },
      headersTimeout: this.tuning.timeoutMs,
      bodyTimeout: this.tuning.timeoutMs,
      keepAliveTimeout: 4000,
    });
  }

  get policyForChecks(): TargetPolicy {
    return this.policy;
  }

  /**
   * Starts the worker: what is due now (pending deliveries of an earlier run) goes out before this
   * resolves, so a started server does no start-up queries later; then the expiry scheduler.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.run();
    if (this.tuning.expiryScanMs > 0) {
      // not at once: a starting server has better things to do than scan keys
      this.expiryTimer = setTimeout(() => this.expiryLoop(), Math.min(5000, this.tuning.expiryScanMs));
      this.expiryTimer.unref();
    }
  }

  /** Looks for due deliveries soon (an event was just enqueued here; its transaction may still be committing). */
  nudge(): void {
    if (!this.started || this.stopping.signal.aborted) return;
    this.schedule(10);
    setTimeout(() => this.schedule(0), 250).unref();
  }

  private expirySoonTimer: NodeJS.Timeout | undefined;
  /** that scan, awaited by stop() (the store closes after it) */
  private expirySoonRun: Promise<unknown> | undefined;

  /**
   * Runs the `key.expiring` scan in a second (a key that expires within the thresholds may just have
   * been made, rotated or enabled, in an organization with a webhook for it), rather than at the
   * next periodic scan up to `expiryScanMs` later. At most one such scan a second.
   */
  expirySoon(): void {
    if (!this.started || this.stopping.signal.aborted || this.tuning.expiryScanMs <= 0) return;
    if (this.expirySoonTimer) return;
    this.expirySoonTimer = setTimeout(() => {
      this.expirySoonTimer = undefined;
      if (this.stopping.signal.aborted) return;
      // notices are once-only by their primary key, so this may overlap the periodic scan
      this.expirySoonRun = this.scanExpiring().catch((err: Error) =>
        this.deps.log.warn({ webhook_error: err.message }, 'key.expiring scan failed'),
      );
    }, 1000);
    this.expirySoonTimer.unref();
  }

  /** Stops polling, aborts attempts in flight (their leases are given back) and waits for them. */
  async stop(): Promise<void> {
    this.stopping.abort();
    clearTimeout(this.timer);
    clearTimeout(this.expiryTimer);
    clearTimeout(this.expirySoonTimer);
    await this.running?.catch(() => {});
    await this.expiryRun?.catch(() => {});
    await this.expirySoonRun?.catch(() => {});
    await this.agent.close().catch(() => {});
  }

  /** set while a drain waits for an attempt to end: wakes it to look at what is due */
  private wake: (() => void) | undefined;

  private schedule(ms: number): void {
    if (this.stopping.signal.aborted) return;
    if (this.running) {
      this.again = true;
      // a drain waiting for an attempt to end looks at what is due now (it may have a free slot)
      this.wake?.();
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.run(), ms);
    this.timer.unref();
  }

  private run(): Promise<void> {
    if (this.stopping.signal.aborted || this.running) return Promise.resolve();
    let wait = this.tuning.pollMs;
    this.running = this.drain()
      .then(async () => {
        // sleep until the next retry this worker can take, at most pollMs (no query while idle)
        const next = await this.repo.nextDue(this.deps.clock().toISOString());
        if (next)
          wait = Math.min(wait, Math.max(MIN_WAIT_MS, Date.parse(next) - this.deps.clock().getTime()));
      })
      .catch((err: Error) =>
        this.deps.log.warn({ webhook_error: err.message }, 'webhook worker: scan failed'),
      )
      .finally(() => {
        this.running = null;
        const again = this.again;
        this.again = false;
        this.schedule(again ? 0 : wait);
      });
    return this.running;
  }

  /**
   * Delivers everything due now, `concurrency` attempts at a time, a slot taken again as soon as one
   * frees. Fair between tenants: at most one attempt per webhook is in flight, and an organization
   * gets more than half the slots only when no other organization has a delivery due. So receivers
   * that never answer (each attempt waits `timeoutMs`) slow their own organization's deliveries;
   * another organization's wait for a slot is bounded by one attempt.
   */
  private async drain(): Promise<void> {
    const { concurrency } = this.tuning;
    // one slot stays for other organizations when one organization takes more than its share
    const anyOrg = Math.max(1, concurrency - 1);
    const perOrg = Math.max(1, Math.floor(concurrency / 2));
    const inFlight = new Map<string, { webhookId: string; orgId: string; done: Promise<void> }>();
    try {
      for (;;) {
        if (this.stopping.signal.aborted) return;
        const now = this.deps.clock();
        const leaseUntil = new Date(now.getTime() + this.tuning.timeoutMs + LEASE_MARGIN_MS).toISOString();
        /** claims and starts what `due` offers within the limits; how many it started */
        const start = async (due: readonly DueDelivery[], capOrgs: boolean, slots = concurrency) => {
          let started = 0;
          for (const d of due) {
            if (inFlight.size >= slots) break;
            const flights = [...inFlight.values()];
            if (flights.some((f) => f.webhookId === d.webhook_id)) continue;
            if (capOrgs && flights.filter((f) => f.orgId === d.org_id).length >= perOrg) continue;
            if (!(await this.repo.claim(d.id, now.toISOString(), leaseUntil))) continue;
            const done = this.attempt(d.id, leaseUntil)
              .catch((err: Error) =>
                this.deps.log.warn({ webhook_error: err.message }, 'webhook worker: attempt failed'),
              )
              .finally(() => inFlight.delete(d.id));
            inFlight.set(d.id, { webhookId: d.webhook_id, orgId: d.org_id, done });
            started++;
          }
          return started;
        };
        let started = 0;
        const free = concurrency - inFlight.size;
        if (free > 0) {
          const flights = [...inFlight.values()];
          const webhooks = flights.map((f) => f.webhookId);
          const full = [...new Set(flights.map((f) => f.orgId))].filter(
            (org) => flights.filter((f) => f.orgId === org).length >= perOrg,
          );
          started = await start(
            await this.repo.due(now.toISOString(), free * 4, { webhooks, orgs: full }),
            true,
          );
          // nothing of another organization is due: a busy one may have the free slots but one
          // (work-conserving, while a delivery of another organization still finds a slot at once)
          if (started === 0 && full.length > 0 && inFlight.size < anyOrg)
            started = await start(
              await this.repo.due(now.toISOString(), (anyOrg - inFlight.size) * 4, { webhooks, orgs: [] }),
              false,
              anyOrg,
            );
        }
        if (inFlight.size === 0) return;
        // nothing more to start now (all slots taken, or what is due waits for a busy webhook):
        // wait for an attempt to end or a new delivery (nudge), then look again
        if (started === 0 || inFlight.size >= concurrency) {
          const woken = new Promise<void>((resolve) => {
            this.wake = resolve;
          });
          await Promise.race([woken, ...[...inFlight.values()].map((f) => f.done)]);
          this.wake = undefined;
        }
      }
    } finally {
      await Promise.allSettled([...inFlight.values()].map((f) => f.done));
    }
  }

  private async attempt(id: string, leaseUntil: string): Promise<void> {
    const row = await this.repo.delivery(id);
    if (!row) return;
    const hook = await this.repo.get(row.webhook_id);
    if (!hook) return;
    const result = await this.send(hook.url, row);
    if (result === 'aborted') {
      await this.repo.release(id, leaseUntil).catch(() => {});
      return;
    }
    const now = this.deps.clock();
    const attempts = row.attempts + 1;
    if (result.ok) {
      await this.repo.finishAttempt(id, leaseUntil, {
        status: 'delivered',
        last_status_code: result.statusCode,
        last_error: null,
        next_attempt_at: null,
        delivered_at: now.toISOString(),
      });
      return;
    }
    const next = now.getTime() + retryDelayMs(attempts, this.tuning);
    const giveUp = next > Date.parse(row.created_at) + this.tuning.maxAgeMs;
    await this.repo.finishAttempt(id, leaseUntil, {
      status: giveUp ? 'failed' : 'pending',
      last_status_code: result.statusCode,
      last_error: result.error,
      next_attempt_at: giveUp ? null : new Date(next).toISOString(),
      delivered_at: null,
    });
  }

  /** One POST of the signed body; never throws. */
  private async send(
    rawUrl: string,
    row: DeliveryRow,
  ): Promise<{ ok: boolean; statusCode: number | null; error: string | null } | 'aborted'> {
    try {
      const url = parseTargetUrl(rawUrl, this.policy);
      // a name is checked inside the connection's lookup; an IP literal never gets there
      if (isIP(url.hostname.replace(/^\[|\]$/g, '')) !== 0) await resolveTarget(url.hostname, this.policy);
      const t = Math.floor(this.deps.clock().getTime() / 1000);
      const { kid, sig } = await this.deps.jwt.signDetached(Buffer.from(`${t}.${row.body}`, 'utf8'));
      const res = await request(url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Breeze-Webhooks/1',
          'breeze-signature': `t=${t},kid=${kid},sig=${sig}`,
          'breeze-event': row.event_type,
          'breeze-event-id': row.event_id,
          'breeze-delivery': row.id,
        },
        body: row.body,
        signal: AbortSignal.any([this.stopping.signal, AbortSignal.timeout(this.tuning.timeoutMs)]),
      });
      await res.body.dump({ limit: MAX_ANSWER_BYTES }).catch(() => {});
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      return {
        ok,
        statusCode: res.statusCode,
        error: ok
          ? null
          : res.statusCode >= 300 && res.statusCode < 400
            ? `answered ${res.statusCode} (redirects are not followed)`
            : `answered ${res.statusCode}`,
      };
    } catch (err) {
      if (this.stopping.signal.aborted) return 'aborted';
      return { ok: false, statusCode: null, error: describeFailure(err, this.tuning.timeoutMs) };
    }
  }

  // --- key.expiring ---

  private expiryRun: Promise<void> | null = null;

  private expiryLoop(): void {
    if (this.stopping.signal.aborted) return;
    this.expiryRun = this.scanExpiring()
      .then(() => this.pruneDeliveries())
      .then(() => undefined)
      .catch((err: Error) => this.deps.log.warn({ webhook_error: err.message }, 'key.expiring scan failed'))
      .finally(() => {
        this.expiryRun = null;
        if (this.stopping.signal.aborted) return;
        this.expiryTimer = setTimeout(() => this.expiryLoop(), this.tuning.expiryScanMs);
        this.expiryTimer.unref();
      });
  }

  /** Deletes finished deliveries older than the retention, in batches; returns how many went. */
  async pruneDeliveries(): Promise<number> {
    const before = new Date(this.deps.clock().getTime() - this.tuning.deliveryRetentionMs).toISOString();
    let total = 0;
    for (let i = 0; i < 100 && !this.stopping.signal.aborted; i++) {
      const n = await this.repo.pruneFinished(before, 1000);
      total += n;
      if (n < 1000) break;
    }
    return total;
  }

  /**
   * Enqueues one `key.expiring` per key and threshold (1 day, 7 days before `expires_at`). The
   * notice row and the deliveries are written in one transaction and the notice's primary key
   * makes it once-only, across restarts and instances. A key already within 1 day gets that notice
   * only. Returns how many events were enqueued.
   */
  async scanExpiring(): Promise<number> {
    let sent = 0;
    for (const th of EXPIRY_THRESHOLDS) {
      for (;;) {
        if (this.stopping.signal.aborted) return sent;
        const now = this.deps.clock();
        const keys = await this.repo.keysExpiringWithout(
          th.name,
          now.toISOString(),
          new Date(now.getTime() + th.ms).toISOString(),
          100,
        );
        for (const key of keys) {
          const fresh = await this.deps.store.transaction(async (tx) => {
            const repo = new WebhooksRepo(tx.db);
            if (!(await repo.markExpiryNotice(key.id, th.name, now.toISOString()))) return false;
            // a later threshold never fires after a nearer one did
            for (const later of EXPIRY_THRESHOLDS) {
              if (later.ms > th.ms) await repo.markExpiryNotice(key.id, later.name, now.toISOString());
            }
            await this.deps.enqueueExpiring(tx, key, th.name);
            return true;
          });
          if (fresh) sent++;
        }
        if (keys.length < 100) break;
      }
    }
    if (sent > 0) this.nudge();
    return sent;
  }
}

/** A failed attempt in words for the delivery log: never the URL (its query may hold a token). */
function describeFailure(err: unknown, timeoutMs: number): string {
  const e = err as NodeJS.ErrnoException & { name?: string; cause?: NodeJS.ErrnoException };
  if (e?.name === 'TargetRefused') return e.message;
  if (e?.code === 'EWEBHOOKTARGET') return e.message;
  if (e?.cause?.code === 'EWEBHOOKTARGET') return e.cause.message;
  if (
    e?.name === 'TimeoutError' ||
    e?.code === 'UND_ERR_HEADERS_TIMEOUT' ||
    e?.code === 'UND_ERR_BODY_TIMEOUT' ||
    e?.code === 'UND_ERR_CONNECT_TIMEOUT'
  ) {
    return `no answer within ${Math.round(timeoutMs / 1000)} s`;
  }
  const code = e?.code ?? e?.cause?.code;
  const msg = String(e?.cause?.message ?? e?.message ?? e).slice(0, 200);
  return code ? `${code}: ${msg}` : msg;
}
