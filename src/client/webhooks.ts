/**
 * Client of the webhook routes of PLATFORM.md ("Webhooks"). Every answer is checked like
 * validate.ts does (a server is untrusted): a mismatch is `UNEXPECTED_RESPONSE`, naming the field
 * only. Free text (URLs, event names, errors) is kept as it is: the output layer escapes it.
 */
import type { BreezeClient } from './client.js';
import { bad, id, nullableStr, record, str } from './validate.js';

export interface WebhookInfo {
  id: string;
  url: string;
  events: string[];
  created_at: string;
  org_id?: string;
  created_by?: string;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface DeliveryInfo {
  id: string;
  event: string;
  status: DeliveryStatus;
  attempts: number;
  last_status_code: number | null;
  next_attempt_at: string | null;
  event_id?: string;
  last_error?: string | null;
  created_at?: string;
  delivered_at?: string | null;
}

const STATUSES: readonly string[] = ['pending', 'delivered', 'failed'];

function count(what: string, field: string, value: unknown, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max)
    throw bad(what, field, 'is not a count');
  return value;
}

export function checkWebhook(what: string, value: unknown, field = 'response'): WebhookInfo {
  const w = record(what, field, value);
  id(what, `${field}.id`, w.id);
  str(what, `${field}.url`, w.url);
  if (!Array.isArray(w.events) || w.events.some((e) => typeof e !== 'string'))
    throw bad(what, `${field}.events`, 'is not a list of event names');
  str(what, `${field}.created_at`, w.created_at);
  if (w.org_id !== undefined) id(what, `${field}.org_id`, w.org_id);
  if (w.created_by !== undefined) id(what, `${field}.created_by`, w.created_by);
  return w as unknown as WebhookInfo;
}

export function checkDelivery(what: string, value: unknown, field = 'response'): DeliveryInfo {
  const d = record(what, field, value);
  id(what, `${field}.id`, d.id);
  str(what, `${field}.event`, d.event);
  if (typeof d.status !== 'string' || !STATUSES.includes(d.status))
    throw bad(what, `${field}.status`, 'is not pending, delivered or failed');
  count(what, `${field}.attempts`, d.attempts, 1e6);
  if (d.last_status_code !== null && d.last_status_code !== undefined)
    count(what, `${field}.last_status_code`, d.last_status_code, 999);
  nullableStr(what, `${field}.next_attempt_at`, d.next_attempt_at);
  if (d.event_id !== undefined) id(what, `${field}.event_id`, d.event_id);
  nullableStr(what, `${field}.last_error`, d.last_error);
  nullableStr(what, `${field}.created_at`, d.created_at);
  nullableStr(what, `${field}.delivered_at`, d.delivered_at);
  return d as unknown as DeliveryInfo;
}

function list<T>(
  what: string,
  value: unknown,
  check: (what: string, v: unknown, field: string) => T,
): { data: T[] } {
  const body = record(what, 'response', value);
  if (!Array.isArray(body.data)) throw bad(what, 'data', 'is not a list');
  return { data: body.data.map((v, i) => check(what, v, `data[${i}]`)) };
}

const seg = encodeURIComponent;

/** Typed methods of the webhook routes over a `BreezeClient` (its key, retries and checks). */
export class WebhooksClient {
  constructor(private readonly client: BreezeClient) {}

  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    return (await this.client.request<unknown>(method, path, body === undefined ? {} : { body })).body;
  }

  /** `POST /v1/orgs/:org_id/webhooks` */
  async create(orgId: string, body: { url: string; events: string[] }): Promise<WebhookInfo> {
    return checkWebhook(
      'POST /v1/orgs/:org_id/webhooks',
      await this.call('POST', `/v1/orgs/${seg(orgId)}/webhooks`, body),
    );
  }

  /** `GET /v1/orgs/:org_id/webhooks` */
  async list(orgId: string): Promise<{ data: WebhookInfo[] }> {
    const what = 'GET /v1/orgs/:org_id/webhooks';
    return list(what, await this.call('GET', `/v1/orgs/${seg(orgId)}/webhooks`), checkWebhook);
  }

  /** `DELETE /v1/webhooks/:id` */
  async delete(webhookId: string): Promise<void> {
    await this.client.request('DELETE', `/v1/webhooks/${seg(webhookId)}`);
  }

  /** `POST /v1/webhooks/:id/test`: the ping's delivery */
  async test(webhookId: string): Promise<DeliveryInfo> {
    return checkDelivery(
      'POST /v1/webhooks/:id/test',
      await this.call('POST', `/v1/webhooks/${seg(webhookId)}/test`),
    );
  }

  /** `GET /v1/webhooks/:id/deliveries` */
  async deliveries(webhookId: string, limit?: number): Promise<{ data: DeliveryInfo[] }> {
    const what = 'GET /v1/webhooks/:id/deliveries';
    const q = limit === undefined ? '' : `?limit=${limit}`;
    return list(what, await this.call('GET', `/v1/webhooks/${seg(webhookId)}/deliveries${q}`), checkDelivery);
  }
}
