import type { FastifyRequest } from 'fastify';
import type { CompiledQuery } from 'kysely';
import { monotonicUlids, ulid, ulidTimePrefix } from '../../core/ids.js';
import type { AuthContext } from '../auth-context.js';
import { clientIp } from '../client-ip.js';
import type { AuditInsertResult, AuditListFilter, AuditRow } from '../store/audit.js';
import type { Store, StoreTx } from '../store/index.js';
import { withoutControls } from '../validation.js';

/** Every action the audit log knows (PLATFORM.md "Audit log and usage"). */
export const AUDIT_ACTIONS = [
  'user.signed_in',
  'cli_login.approved',
  'cli_login.denied',
  'cli_login.exchanged',
  'key.created',
  'key.updated',
  'key.rotated',
  'key.disabled',
  'key.enabled',
  'key.deleted',
  'key.leaked',
  'member.invited',
  'member.joined',
  'member.role_changed',
  'member.removed',
  'project.created',
  'project.deleted',
  'webhook.created',
  'webhook.deleted',
  'oidc_trust.created',
  'oidc.exchanged',
  'oidc_trust.deleted',
  'org.updated',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** Who did it: a user (session, JWT), a user through one of their keys, or the server itself. */
export type AuditActor = { type: 'user' | 'key' | 'system'; id: string; email?: string; key_id?: string };

export interface AuditRecord {
  /** one of AUDIT_ACTIONS ('key.created', ...) */
  action: AuditAction | (string & {});
  orgId: string;
  projectId?: string | null;
  actor: AuditActor;
  /**
   * What it was done to. `ownerId`: the user who owns the target (a key's creator, the member
   * concerned), who may read the event without managing the organization; for a `key` target it is
   * looked up when not given. Not part of the API shape.
   */
  target: { type: string; id: string; ownerId?: string | null };
  /** never a secret (fields named like one are dropped, and Breeze keys are cut to their prefix) */
  details?: Record<string, unknown>;
}

export interface RequestMeta {
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
}

/** The API shape of an event (`GET /v1/audit-events`, webhook payloads). */
export interface AuditEvent {
  id: string;
  at: string;
  action: string;
  org_id: string;
  project_id?: string;
  actor: AuditActor;
  target: { type: string; id: string };
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  details: Record<string, unknown>;
}

/** Who does a change and from where: what services take to record it. */
export interface AuditBy {
  meta: RequestMeta;
  actor: AuditActor;
}

/**
 * Runs in the transaction of every recorded event. `written` is what the event's insert learnt on
 * the way (whether its organization has a webhook), so a sink can skip queries it knows are empty.
 */
export type AuditSink = (tx: StoreTx, event: AuditEvent, written: AuditInsertResult) => Promise<void>;

/** No request: the server acting on its own (pruner, background workers). */
export const SYSTEM_META: RequestMeta = { ip: null, userAgent: null, requestId: null };
export const SYSTEM_ACTOR: AuditActor = { type: 'system', id: 'system' };
export const SYSTEM_BY: AuditBy = { meta: SYSTEM_META, actor: SYSTEM_ACTOR };

const MAX_USER_AGENT = 512;
/** Field names that hold secrets anywhere in Breeze: such fields never reach the log. */
const SECRET_FIELD =
  /secret|token|password|passwd|verifier|api_?key|hash|cookie|authorization|^code$|_code$|^jwt$/i;
/** A Breeze key (or anything shaped like one) inside a string: cut to its 12-character display prefix. */
const KEY_LIKE = /brz_[0-9A-Za-z]{9,}/g;
/**
 * A run of base64url characters and dots that starts with `eyJ`: where a JWT (header.payload.
 * signature, the header always starting `{"`, so `eyJ`) can be. Within a run, a JWT is a part with an
 * `eyJ` in it followed by two more parts (the second not empty): cut from that `eyJ` on, its three
 * parts and all, to `eyJ…`. One pass over the run's dot-separated parts (a single regex backtracks:
 * 16 KB of `eyJeyJ…` in a user agent took 30 ms).
 */
const JWT_RUN = /eyJ[0-9A-Za-z_.-]*/g;

function scrubJwtRun(run: string): string {
  const parts = run.split('.');
  let out = '';
  let i = 0;
  while (i < parts.length) {
    const part = parts[i] as string;
    const at = part.indexOf('eyJ');
    if (at >= 0 && i + 2 < parts.length && parts[i + 1] !== '') {
      out += `${i === 0 ? '' : '.'}${part.slice(0, at)}eyJ…`;
      i += 3;
    } else {
      out += `${i === 0 ? '' : '.'}${part}`;
      i += 1;
    }
  }
  return out;
}

/** `text` with Breeze keys cut to their display prefix and JWTs to `eyJ…`. */
export function scrubText(text: string): string {
  return text.replace(KEY_LIKE, (k) => `${k.slice(0, 12)}…`).replace(JWT_RUN, scrubJwtRun);
}

/** `evt_` + a ULID of millisecond `now` (tests back-date events with it). */
export const newAuditEventId = (now?: number): string => `evt_${ulid(now)}`;

/** The request's client address, user agent and request id. */
export function requestMeta(req: FastifyRequest): RequestMeta {
  const header = req.headers['user-agent'];
  // control characters never reach the log, a mail or a terminal (and PostgreSQL refuses NUL in text)
  // and no secret reaches an event: a client that puts its key or token in its user agent (a
  // script's `curl -A "$KEY"`) must not have it stored, listed and sent to webhooks. Scrubbed
  // before it is cut, so that a secret cut in two is still recognised.
  const ua = typeof header === 'string' ? scrubText(withoutControls(header)).slice(0, MAX_USER_AGENT) : '';
  return {
    ip: clientIp(req) || null,
    userAgent: ua !== '' ? ua : null,
    requestId: typeof req.id === 'string' ? req.id : null,
  };
}

/** The actor of an authenticated call: the user, and the key when the call used one. */
export function actorOf(auth: AuthContext): AuditActor {
  if (auth.type === 'api_key' && auth.keyId) {
    return { type: 'key', id: auth.user.id, email: auth.user.email, key_id: auth.keyId };
  }
  return { type: 'user', id: auth.user.id, email: auth.user.email };
}

/** The caller of a request, as services take it. */
export function byRequest(req: FastifyRequest, auth: AuthContext): AuditBy {
  return { meta: requestMeta(req), actor: actorOf(auth) };
}

/** A user acting as themselves (a sign-in, a login exchange), without an AuthContext. */
export function userActor(user: { id: string; email: string }): AuditActor {
  return { type: 'user', id: user.id, email: user.email };
}

/**
 * `details` without secrets: secret-named fields dropped, key-shaped text cut, depth bounded. What
 * it returns is plain JSON data (what JSON.stringify then JSON.parse would give back): the event
 * `record` returns and hands to its sinks is built from it without a round trip through JSON.
 */
export function scrubDetails(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubText(value);
  // JSON has no NaN or Infinity (they are written as null)
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (value === null || typeof value === 'boolean') return value;
  if (depth >= 4) return null;
  if (Array.isArray(value)) return value.slice(0, 100).map((v) => scrubDetails(v, depth + 1));
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (SECRET_FIELD.test(k) || v === undefined) continue;
      out[k] = scrubDetails(v, depth + 1);
    }
    return out;
  }
  return null;
}

/** A stored row as the API shows it; `details`: the row's, already parsed (else parsed here). */
export function toAuditEvent(row: AuditRow, parsedDetails?: Record<string, unknown>): AuditEvent {
  const actor: AuditActor = { type: row.actor_type as AuditActor['type'], id: row.actor_id };
  if (row.actor_email) actor.email = row.actor_email;
  if (row.actor_key_id) actor.key_id = row.actor_key_id;
  let details: Record<string, unknown> = parsedDetails ?? {};
  if (!parsedDetails) {
    try {
      const parsed: unknown = JSON.parse(row.details);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
        details = parsed as Record<string, unknown>;
    } catch {
      // a row is only ever written by record(); unreadable details read as none
    }
  }
  return {
    id: row.id,
    at: row.at,
    action: row.action,
    org_id: row.org_id,
    ...(row.project_id ? { project_id: row.project_id } : {}),
    actor,
    target: { type: row.target_type, id: row.target_id },
    ip: row.ip,
    user_agent: row.user_agent,
    request_id: row.request_id,
    details,
  };
}

export interface AuditServiceOptions {
  clock?: () => Date;
  /**
   * Test and bench only: record nothing (the bench compares key creation with and without audit
   * writes, switching `AuditService.disabled` on one running server). Never exposed as a server
   * option.
   */
  disabled?: boolean;
}

/**
 * The audit log. `record` writes one event inside the caller's transaction, so the change and its
 * event commit together or not at all; sinks (webhook deliveries) run in that same transaction.
 */
export class AuditService {
  private readonly sinks: AuditSink[] = [];
  private readonly clock: () => Date;
  /**
   * The ids of the events this service records: each sorts after every one it recorded before (see
   * monotonicUlids). The log is read newest first by id, and two events of one millisecond (a key
   * created, then disabled) must keep their order. Instances' ids interleave by their clocks.
   */
  private readonly nextEventUlid = monotonicUlids();
  /** test and bench only (see AuditServiceOptions.disabled); read on every event */
  disabled: boolean;

  constructor(
    private readonly store: Store,
    opts: AuditServiceOptions = {},
  ) {
    this.clock = opts.clock ?? (() => new Date());
    this.disabled = opts.disabled ?? false;
  }

  /**
   * Writes one event inside the caller's transaction (StoreTx); runs every sink in that same tx.
   * `change`: the statement of the change the event records, when the caller leaves running it to
   * the event's insert (on PostgreSQL both then go in one round trip: see AuditRepo.insert). It
   * runs also when the log is switched off.
   */
  async record(
    tx: StoreTx,
    meta: RequestMeta,
    record: AuditRecord,
    change?: CompiledQuery,
  ): Promise<AuditEvent> {
    const now = this.clock();
    // read once: the bench switches it while requests are in flight
    const disabled = this.disabled;
    let ownerId = record.target.ownerId ?? null;
    if (!ownerId && record.target.type === 'key' && !disabled) {
      // the key may be the change's own: that has to run first
      if (change) await tx.db.executeQuery(change);
      change = undefined;
      ownerId = (await tx.keys.get(record.target.id))?.user_id ?? null;
    }
    const scrubbed = scrubDetails(record.details ?? {});
    const details =
      scrubbed && typeof scrubbed === 'object' && !Array.isArray(scrubbed)
        ? (scrubbed as Record<string, unknown>)
        : {};
    const row: AuditRow = {
      id: `evt_${this.nextEventUlid(now.getTime())}`,
      at: now.toISOString(),
      org_id: record.orgId,
      project_id: record.projectId ?? null,
      action: record.action,
      actor_type: record.actor.type,
      actor_id: record.actor.id,
      actor_email: record.actor.email ?? null,
      actor_key_id: record.actor.key_id ?? null,
      target_type: record.target.type,
      target_id: record.target.id,
      target_owner_id: ownerId,
      ip: meta.ip,
      user_agent: meta.userAgent?.slice(0, MAX_USER_AGENT) ?? null,
      request_id: meta.requestId,
      details: JSON.stringify(details),
    };
    const event = toAuditEvent(row, details);
    if (disabled) {
      if (change) await tx.db.executeQuery(change);
      return event;
    }
    const written = await tx.audit.insert(row, change);
    for (const sink of this.sinks) await sink(tx, event, written);
    return event;
  }

  /**
   * Records an event that has no organization of its own (`user.signed_in`, `cli_login.*`): it
   * goes to the user's personal organization (created if it does not exist yet).
   */
  async recordForUser(
    tx: StoreTx,
    meta: RequestMeta,
    user: { id: string; email: string },
    record: Omit<AuditRecord, 'orgId'>,
  ): Promise<AuditEvent> {
    const org = (await tx.orgs.personalOf(user.id)) ?? (await tx.orgs.ensurePersonal(user, this.clock())).org;
    return this.record(tx, meta, { ...record, orgId: org.id });
  }

  /** Sinks run inside the transaction of each recorded event (webhooks enqueue deliveries here). */
  addSink(sink: AuditSink): void {
    this.sinks.push(sink);
  }

  /** Reads the log (authorization is the caller's: see routes/audit-events.ts). */
  async list(filter: AuditListFilter): Promise<AuditEvent[]> {
    return (await this.store.audit.list(filter)).map((r) => toAuditEvent(r));
  }

  /** Deletes events older than `retentionDays`, in batches; returns how many went. */
  async prune(retentionDays: number, batch = 1000, maxBatches = 1000): Promise<number> {
    const before = this.clock().getTime() - retentionDays * 86400_000;
    // every id minted before that millisecond sorts below this one (same prefix, then the time)
    const beforeId = `evt_${ulidTimePrefix(before)}`;
    let total = 0;
    let batches = 0;
    // only the organizations with something to prune; what maxBatches leaves waits for the next run
    for (const orgId of await this.store.audit.organizationsWithEventsBefore(beforeId)) {
      for (;;) {
        if (batches++ >= maxBatches) return total;
        const n = await this.store.audit.pruneBatch(orgId, beforeId, batch);
        total += n;
        // let requests in between batches
        await new Promise((resolve) => setImmediate(resolve));
        if (n < batch) break;
      }
    }
    return total;
  }
}
