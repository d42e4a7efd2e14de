import type { Resolver } from './webhook-target.js';

/** Timings of the delivery worker and the `key.expiring` scheduler; tests shorten them. */
export interface WebhookTuning {
  /**
   * The longest an idle worker goes without looking for due deliveries: what it does not know of
   * (deliveries a stopped or crashed instance left behind) goes out within this plus the lease.
   * Retries it scheduled itself and events enqueued in this process go out on time. Default 15 s.
   */
  pollMs?: number;
  /** first retry this long after a failure, then doubling (PLATFORM.md: within 30 s); default 10 s */
  retryBaseMs?: number;
  /** the longest wait between two attempts; default 3 h */
  maxRetryDelayMs?: number;
  /** after this long since the event, a failing delivery is given up (PLATFORM.md: 24 h) */
  maxAgeMs?: number;
  /** one attempt's time limit, connection to the end of the answer (PLATFORM.md: 10 s) */
  timeoutMs?: number;
  /** deliveries attempted at once per instance; default 8 */
  concurrency?: number;
  /** how often keys are checked for `key.expiring` (and old deliveries pruned); default 10 min, 0: never */
  expiryScanMs?: number;
  /** finished deliveries (delivered, given up) are kept this long in the log; default 30 days, never longer than the audit retention */
  deliveryRetentionMs?: number;
  /** how the target's host is resolved (tests: a name that points at 127.0.0.1) */
  resolve?: Resolver;
}
