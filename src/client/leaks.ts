import type { BreezeClient } from './client.js';
import { ApiError, NetworkError } from './errors.js';
import { bad, record } from './validate.js';

/** What the server says of a found key, asked with that key itself (`GET /v1/me`). */
export type Liveness = 'live' | 'not_live' | 'unchecked';

/**
 * Whether the server accepts `apiKey`: `GET /v1/me` sent with the key itself (CLI.md "details"). A
 * 2xx is live, a 401 is not; anything else (no answer, 429, 5xx) leaves it unchecked, with the error.
 * No retries: a scan with many keys should not wait on a server that is down.
 */
export async function checkLiveness(
  client: BreezeClient,
  apiKey: string,
): Promise<{ status: Liveness; error?: ApiError | NetworkError }> {
  try {
    await client.withKey(apiKey).request<unknown>('GET', '/v1/me', { retries: 0 });
    return { status: 'live' };
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return { status: 'not_live' };
    if (err instanceof ApiError || err instanceof NetworkError) return { status: 'unchecked', error: err };
    throw err;
  }
}

/**
 * `POST /v1/keys/leaks` (PLATFORM.md "Leak reports"), without any credential: the key goes in the
 * body only. The answer must be exactly `{"received": true}`.
 */
export async function reportLeak(client: BreezeClient, apiKey: string, source?: string): Promise<void> {
  const what = 'POST /v1/keys/leaks';
  const res = await client.request<unknown>('POST', '/v1/keys/leaks', {
    auth: false,
    body: source === undefined ? { key: apiKey } : { key: apiKey, source },
  });
  if (record(what, 'body', res.body).received !== true) throw bad(what, 'received', 'is not true');
}
