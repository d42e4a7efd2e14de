/**
 * Client of `GET /v1/api-keys/:key_id/usage` (PLATFORM.md "Audit log and usage"). The answer is
 * checked like validate.ts checks every other one: a mismatch is `UNEXPECTED_RESPONSE`.
 */
import type { BreezeClient } from './client.js';
import { bad, record, str } from './validate.js';

export interface UsageBucket {
  at: string;
  requests: number;
  rejected: number;
}

export interface UsageQuery {
  from?: string;
  to?: string;
  granularity?: 'hour' | 'day';
}

/** More rows than any range the server allows (93 days of hours) means something is wrong. */
const MAX_ROWS = 5000;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

function count(what: string, field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw bad(what, field, 'is not a count');
  }
  return value;
}

export function checkUsage(what: string, value: unknown): { data: UsageBucket[] } {
  const body = record(what, 'body', value);
  if (!Array.isArray(body.data)) throw bad(what, 'data', 'is not a list');
  if (body.data.length > MAX_ROWS) throw bad(what, 'data', `has more than ${MAX_ROWS} rows`);
  const data = body.data.map((row: unknown, i: number) => {
    const r = record(what, `data[${i}]`, row);
    const at = str(what, `data[${i}].at`, r.at);
    if (!ISO.test(at)) throw bad(what, `data[${i}].at`, 'is not an RFC 3339 UTC time');
    return {
      at,
      requests: count(what, `data[${i}].requests`, r.requests),
      rejected: count(what, `data[${i}].rejected`, r.rejected),
    };
  });
  return { data };
}

/** A key's requests and refusals per hour or day. */
export async function getKeyUsage(
  client: BreezeClient,
  keyId: string,
  q: UsageQuery = {},
): Promise<{ data: UsageBucket[] }> {
  const query: Record<string, string> = {};
  if (q.from) query.from = q.from;
  if (q.to) query.to = q.to;
  if (q.granularity) query.granularity = q.granularity;
  const what = 'GET /v1/api-keys/:key_id/usage';
  const res = await client.request<unknown>('GET', `/v1/api-keys/${encodeURIComponent(keyId)}/usage`, {
    query,
  });
  return checkUsage(what, res.body);
}
