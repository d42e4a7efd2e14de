import type { FastifyInstance } from 'fastify';
import { HttpError } from '../../core/errors.js';
import { ulid } from '../../core/ids.js';
import { authorizeOrg, type OrgAccess, type OrgAction } from '../authz.js';
import type { AuthContext, ServerContext } from '../context.js';
import type { JwtService } from '../jwt.js';
import type { StoreTx } from '../store/index.js';
import { type DeliveryRow, eventsOf, subscribes, type WebhookRow, WebhooksRepo } from '../store/webhooks.js';
import { AUDIT_ACTIONS, actorOf, type RequestMeta, SYSTEM_ACTOR } from './audit.js';
import { OrgService } from './orgs.js';
import { checkTarget, TargetRefused } from './webhook-target.js';
import { DEFAULT_TUNING, type ExpiringKey, type WebhookTuning, WebhookWorker } from './webhook-worker.js';

/**
 * A webhook may subscribe to any audit action (PLATFORM.md "Audit log and usage"), plus
 * `key.expiring`, or to `*` (everything, present and future).
 */
/** Every event name a webhook may subscribe to (`ping` is sent on request, whatever the subscription). */
export const WEBHOOK_EVENTS: readonly string[] = [...AUDIT_ACTIONS, 'key.expiring'];

/** Audit actions after which a key may newly be due a `key.expiring` notice. */
const EXPIRY_MOVES: ReadonlySet<string> = new Set([
  'key.created',
  'key.rotated',
  'key.enabled',
  'key.updated',
]);
export const ALL_EVENTS = '*';
/** Webhooks per organization. */
export const MAX_WEBHOOKS_PER_ORG = 25;

/** An event as the audit log has it (PLATFORM.md): what `data` of a delivery holds. */
export interface WebhookEventData {
  id?: string;
  at?: string;
  action: string;
  org_id: string;
  [field: string]: unknown;
}

export interface WebhookView {
  id: string;
  org_id: string;
  url: string;
  events: string[];
  created_by: string;
  created_at: string;
}

export interface DeliveryView {
  id: string;
  event: string;
  event_id: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  next_attempt_at: string | null;
  created_at: string;
  delivered_at: string | null;
}

export function webhookView(row: WebhookRow): WebhookView {
  return {
    id: row.id,
    org_id: row.org_id,
    url: row.url,
    events: eventsOf(row),
    created_by: row.created_by,
    created_at: row.created_at,
  };
}

export function deliveryView(row: DeliveryRow): DeliveryView {
  return {
    id: row.id,
    event: row.event_type,
    event_id: row.event_id,
    status: row.status as DeliveryView['status'],
    attempts: Number(row.attempts),
    last_status_code: row.last_status_code === null ? null : Number(row.last_status_code),
    last_error: row.last_error,
    next_attempt_at: row.next_attempt_at,
    created_at: row.created_at,
    delivered_at: row.delivered_at,
  };
}

/**
 * A webhook's URL as its own ping shows it: without its query (which may carry the receiver's token).
 * The ping goes to that receiver only.
 */
function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '';
  }
}

/**
 * A webhook's URL as the audit log shows it: its origin alone, `/…` for a path. Events are listed
 * to the organization and sent to its other webhooks, and a path may be a receiver's credential
 * (Slack's and Discord's incoming webhooks carry theirs there); the target id names the webhook.
 */
function auditedUrl(url: string): string {
  try {
    const u = new URL(url);
    return u.pathname === '/' && u.search === '' ? u.origin : `${u.origin}/…`;
  } catch {
    return '';
  }
}

const notFound = () => new HttpError('NOT_FOUND', 'No such webhook.');

/**
 * Webhooks of an organization: subscriptions, the delivery log, enqueueing events (in the
 * transaction that records them) and the test ping. Delivery itself is the worker's.
 */
export class WebhookService {
  private readonly orgs: OrgService;

  constructor(
    private readonly ctx: ServerContext,
    readonly worker: WebhookWorker,
  ) {
    this.orgs = new OrgService(ctx);
  }

  /** The event list of a new webhook, checked: known names, no duplicates, `*` alone. */
  normaliseEvents(events: readonly string[]): string[] {
    const unique = [...new Set(events.map((e) => e.trim()))];
    if (unique.length === 0) throw new HttpError('VALIDATION_FAILED', 'Give at least one event (or "*").');
    // a misspelt name is refused even next to "*": it was meant to be something, and is not
    const unknown = unique.filter((e) => e !== ALL_EVENTS && !WEBHOOK_EVENTS.includes(e));
    if (unknown.length > 0) {
      throw new HttpError(
        'VALIDATION_FAILED',
        `Unknown event${unknown.length > 1 ? 's' : ''}: ${unknown.map((e) => JSON.stringify(e)).join(', ')}. Known events: ${WEBHOOK_EVENTS.join(', ')}, or "*" for all.`,
        { details: { events: unknown } },
      );
    }
    return unique.includes(ALL_EVENTS) ? [ALL_EVENTS] : unique;
  }

  /** Creates a webhook (owner, admin) after the SSRF check of its URL; 400 with the reason when refused. */
  async create(
    access: OrgAccess,
    url: string,
    events: readonly string[],
    meta: RequestMeta,
  ): Promise<WebhookView> {
    authorizeOrg(access, 'webhooks.manage');
    const names = this.normaliseEvents(events);
    try {
      await checkTarget(url, this.worker.policyForChecks);
    } catch (err) {
      if (err instanceof TargetRefused) throw new HttpError('VALIDATION_FAILED', err.message);
      throw err;
    }
    const now = this.ctx.clock();
    const row: WebhookRow = {
      id: `whk_${ulid(now.getTime())}`,
      org_id: access.orgId,
      url,
      events: names.join(' '),
      created_by: access.auth.user.id,
      created_at: now.toISOString(),
    };
    await this.ctx.store.transaction(async (tx) => {
      const repo = new WebhooksRepo(tx.db);
      // concurrent creations in one organization take turns, so that none counts before another's
      // insert has committed (on PostgreSQL both would see room for one more and exceed the cap)
      if (!(await tx.orgs.lock(access.orgId))) throw new HttpError('NOT_FOUND', 'No such organization.');
      if ((await repo.countForOrg(access.orgId)) >= MAX_WEBHOOKS_PER_ORG) {
        throw new HttpError(
          'CONFLICT',
          `This organization already has ${MAX_WEBHOOKS_PER_ORG} webhooks: delete one first.`,
        );
      }
      await repo.insert(row);
      await this.ctx.audit.record(tx, meta, {
        action: 'webhook.created',
        orgId: access.orgId,
        actor: actorOf(access.auth),
        target: { type: 'webhook', id: row.id },
        details: { url: auditedUrl(url), events: names },
      });
    });
    return webhookView(row);
  }

  async list(access: OrgAccess): Promise<WebhookView[]> {
    authorizeOrg(access, 'webhooks.read');
    return (await new WebhooksRepo(this.ctx.store.db).listForOrg(access.orgId)).map(webhookView);
  }

  /** A webhook and the caller's access to its organization; 404 for a non-member (or no such webhook). */
  async find(
    auth: AuthContext,
    id: string,
    action: OrgAction,
  ): Promise<{ row: WebhookRow; access: OrgAccess }> {
    const row = await new WebhooksRepo(this.ctx.store.db).get(id);
    if (!row) throw notFound();
    let access: OrgAccess;
    try {
      access = await this.orgs.access(auth, row.org_id);
    } catch (err) {
      if (err instanceof HttpError && err.code === 'NOT_FOUND') throw notFound();
      throw err;
    }
    authorizeOrg(access, action);
    return { row, access };
  }

  async delete(auth: AuthContext, id: string, meta: RequestMeta): Promise<WebhookView> {
    const { row } = await this.find(auth, id, 'webhooks.manage');
    await this.ctx.store.transaction(async (tx) => {
      if (!(await new WebhooksRepo(tx.db).delete(id))) throw notFound();
      await this.ctx.audit.record(tx, meta, {
        action: 'webhook.deleted',
        orgId: row.org_id,
        actor: actorOf(auth),
        target: { type: 'webhook', id: row.id },
        details: { url: auditedUrl(row.url), events: eventsOf(row) },
      });
    });
    return webhookView(row);
  }

  async deliveries(auth: AuthContext, id: string, limit: number): Promise<DeliveryView[]> {
    await this.find(auth, id, 'webhooks.read');
    return (await new WebhooksRepo(this.ctx.store.db).deliveries(id, limit)).map(deliveryView);
  }

  /** Enqueues a `ping` to this webhook alone (whatever it subscribed to) and returns its delivery. */
  async ping(auth: AuthContext, id: string): Promise<DeliveryView> {
    const { row } = await this.find(auth, id, 'webhooks.manage');
    const now = this.ctx.clock();
    const data: WebhookEventData = {
      id: `evt_${ulid(now.getTime())}`,
      at: now.toISOString(),
      action: 'ping',
      org_id: row.org_id,
      actor: actorOf(auth),
      target: { type: 'webhook', id: row.id },
      details: { url: shownUrl(row.url) },
    };
    const [delivery] = await this.ctx.store.transaction((tx) => this.enqueueTo(tx, [row], data));
    this.worker.nudge();
    return deliveryView(delivery as DeliveryRow);
  }

  /**
   * The audit sink: enqueues `event` for every webhook of its organization subscribed to it, in the
   * caller's transaction (an event and its deliveries commit together or not at all).
   */
  async enqueue(tx: Pick<StoreTx, 'db'>, event: WebhookEventData): Promise<number> {
    if (!event.org_id) return 0;
    const all = await new WebhooksRepo(tx.db).listForOrg(event.org_id);
    // a key that may expire within the notice thresholds: its key.expiring need not wait for the
    // periodic scan
    if (EXPIRY_MOVES.has(event.action) && all.some((h) => subscribes(h, 'key.expiring')))
      this.worker.expirySoon();
    const hooks = all.filter((h) => subscribes(h, event.action));
    if (hooks.length === 0) return 0;
    await this.enqueueTo(tx, hooks, event);
    this.worker.nudge();
    return hooks.length;
  }

  private async enqueueTo(
    tx: Pick<StoreTx, 'db'>,
    hooks: WebhookRow[],
    event: WebhookEventData,
  ): Promise<DeliveryRow[]> {
    const now = this.ctx.clock();
    const nowIso = now.toISOString();
    // the audit event's id (`evt_…`) when there is one: receivers can look the event up in the log
    const eventId =
      typeof event.id === 'string' && event.id.startsWith('evt_') ? event.id : `evt_${ulid(now.getTime())}`;
    const body = JSON.stringify({
      id: eventId,
      type: event.action,
      created_at: event.at ?? nowIso,
      data: event,
    });
    const rows: DeliveryRow[] = hooks.map((h) => ({
      id: `dlv_${ulid(now.getTime())}`,
      webhook_id: h.id,
      event_id: eventId,
      event_type: event.action,
      body,
      status: 'pending',
      attempts: 0,
      last_status_code: null,
      last_error: null,
      created_at: nowIso,
      next_attempt_at: nowIso,
      lease_until: null,
      delivered_at: null,
    }));
    await new WebhooksRepo(tx.db).insertDeliveries(rows);
    return rows;
  }

  /** The `key.expiring` event of a key (the scheduler's), shaped like an audit event. */
  async enqueueExpiring(tx: StoreTx, key: ExpiringKey, threshold: string): Promise<void> {
    if (!key.org_id) return;
    const now = this.ctx.clock();
    await this.enqueue(tx, {
      id: `evt_${ulid(now.getTime())}`,
      at: now.toISOString(),
      action: 'key.expiring',
      org_id: key.org_id,
      project_id: key.project_id,
      // the same actor and target shapes as the audit events (key.leaked, key.created ...)
      actor: SYSTEM_ACTOR,
      target: { type: 'key', id: key.id },
      ip: null,
      user_agent: null,
      request_id: null,
      details: {
        key_id: key.id,
        name: key.name,
        prefix: key.prefix,
        created_by: key.user_id,
        expires_at: key.expires_at,
        within: threshold,
      },
    });
  }
}

/**
 * The worker's timings, with finished deliveries kept no longer than the audit log keeps events: a
 * delivery's body is the whole audit event (actor, IP, user agent), and a server told to keep
 * events 7 days must not keep copies of them 30.
 */
function withAuditRetention(tuning: WebhookTuning | undefined, retentionDays: number): WebhookTuning {
  if (!(retentionDays > 0)) return { ...tuning };
  const kept = tuning?.deliveryRetentionMs ?? DEFAULT_TUNING.deliveryRetentionMs;
  return { ...tuning, deliveryRetentionMs: Math.min(kept, retentionDays * 86_400_000) };
}

/**
 * Builds the webhook service and its worker for `app`: the worker starts when the app is ready and
 * stops (aborting attempts in flight, giving their leases back) when it closes, before the store does.
 */
export function setupWebhooks(app: FastifyInstance, ctx: ServerContext, jwt: JwtService): WebhookService {
  let service: WebhookService | undefined;
  const worker = new WebhookWorker({
    store: ctx.store,
    jwt,
    clock: ctx.clock,
    log: app.log,
    allowPrivate: ctx.config.allowPrivateWebhooks === true,
    tuning: withAuditRetention(ctx.config.webhooks, ctx.config.auditRetentionDays),
    enqueueExpiring: (tx, key, threshold) => (service as WebhookService).enqueueExpiring(tx, key, threshold),
  });
  service = new WebhookService(ctx, worker);
  const hooks = service;
  ctx.audit.addSink(async (tx, event, written) => {
    // the event's insert found no webhook in its organization: nothing to enqueue, no query to run
    if (!written.orgHasWebhooks) return;
    await hooks.enqueue(tx, event as unknown as WebhookEventData);
  });
  app.decorate('breezeWebhooks', service);
  app.addHook('onReady', async () => {
    await worker.start();
  });
  app.addHook('onClose', async () => {
    await worker.stop();
  });
  return service;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** set by buildApp: webhooks, their delivery worker and the `key.expiring` scheduler */
    breezeWebhooks: WebhookService;
  }
}
