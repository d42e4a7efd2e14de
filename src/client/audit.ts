/**
 * Client of `GET /v1/audit-events` (PLATFORM.md "Audit log and usage"). Every answer is checked like
 * validate.ts does (a server is untrusted): a mismatch is `UNEXPECTED_RESPONSE`, naming the field.
 */
import type { BreezeClient } from './client.js';
import { bad, id, nullableStr, record, str } from './validate.js';

export const ACTOR_TYPES = ['user', 'key', 'system'] as const;

export interface AuditActorInfo {
  type: (typeof ACTOR_TYPES)[number];
  id: string;
  email?: string;
  key_id?: string;
}

export interface AuditEventInfo {
  id: string;
  at: string;
  action: string;
  org_id: string;
  project_id?: string;
  actor: AuditActorInfo;
  target: { type: string; id: string };
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  details: Record<string, unknown>;
}

export interface AuditPage {
  data: AuditEventInfo[];
  next_cursor: string | null;
}

export interface AuditQuery {
  org_id?: string;
  action?: string;
  key_id?: string;
  actor_id?: string;
  /** RFC 3339, or a duration back from the server's now (`24h`) */
  since?: string;
  limit?: number;
  cursor?: string;
}

const MAX_TEXT = 2000;

function text(what: string, field: string, value: unknown, max = MAX_TEXT): string {
  const s = str(what, field, value);
  if (s.length > max) throw bad(what, field, 'is too long');
  return s;
}

function time(what: string, field: string, value: unknown): string {
  const s = text(what, field, value, 64);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(s) || Number.isNaN(Date.parse(s))) throw bad(what, field, 'is not a time');
  return s;
}

function optional(what: string, field: string, value: unknown, check = text): string | undefined {
  return value === undefined || value === null ? undefined : check(what, field, value);
}

export function checkAuditEvent(what: string, value: unknown, field = 'event'): AuditEventInfo {
  const e = record(what, field, value);
  id(what, `${field}.id`, e.id);
  time(what, `${field}.at`, e.at);
  text(what, `${field}.action`, e.action, 100);
  id(what, `${field}.org_id`, e.org_id);
  optional(what, `${field}.project_id`, e.project_id, id);
  const actor = record(what, `${field}.actor`, e.actor);
  if (!(ACTOR_TYPES as readonly unknown[]).includes(actor.type)) {
    throw bad(what, `${field}.actor.type`, 'is not user, key or system');
  }
  id(what, `${field}.actor.id`, actor.id);
  optional(what, `${field}.actor.email`, actor.email, (w, f, v) => text(w, f, v, 320));
  optional(what, `${field}.actor.key_id`, actor.key_id, id);
  const target = record(what, `${field}.target`, e.target);
  text(what, `${field}.target.type`, target.type, 100);
  text(what, `${field}.target.id`, target.id, 200);
  for (const k of ['ip', 'user_agent', 'request_id'] as const) {
    const v = nullableStr(what, `${field}.${k}`, e[k]);
    if (v !== null && v.length > MAX_TEXT) throw bad(what, `${field}.${k}`, 'is too long');
  }
  record(what, `${field}.details`, e.details);
  return e as unknown as AuditEventInfo;
}

export function checkAuditPage(what: string, value: unknown): AuditPage {
  const body = record(what, 'response', value);
  if (!Array.isArray(body.data)) throw bad(what, 'data', 'is not a list');
  const data = body.data.map((e, i) => checkAuditEvent(what, e, `data[${i}]`));
  const next = nullableStr(what, 'next_cursor', body.next_cursor);
  if (next !== null && next.length > MAX_TEXT) throw bad(what, 'next_cursor', 'is too long');
  return { data, next_cursor: next };
}

/** `GET /v1/audit-events`: one page, newest first. */
export async function listAuditEvents(client: BreezeClient, query: AuditQuery): Promise<AuditPage> {
  const what = 'GET /v1/audit-events';
  const res = await client.request<unknown>('GET', '/v1/audit-events', {
    query: { ...query },
  });
  return checkAuditPage(what, res.body);
}
