/**
 * `listAllKeys` follows `next_cursor` page after page, keeping every key: a server that answers each
 * page just under the per-answer cap (4 MiB) must not make it hold gigabytes. Past a total no real
 * listing comes near, it stops with an "unexpected response" error; a real listing is untouched.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ApiError, BreezeClient } from '../../src/client/client.js';

let server: Server;
let client: BreezeClient;
let served = 0;
/** the answer to page n (0 first), or a function of it */
let page: (n: number) => string = () => '{"data":[],"next_cursor":null}';

function keyObject(n: number, name: string) {
  return {
    key_id: `key_01J${String(n).padStart(23, '0')}`,
    name,
    prefix: 'brz_abcd1234',
    scopes: ['read'],
    status: 'active',
    created_at: '2026-01-01T00:00:00.000Z',
    expires_at: null,
    last_used_at: null,
    disabled_at: null,
    rotated_from: null,
    created_via: 'api',
  };
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const cursor = new URL(req.url ?? '/', 'http://x').searchParams.get('cursor');
    const n = cursor === null ? 0 : Number(cursor.slice(1));
    served++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(page(n));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  client = new BreezeClient({ baseUrl: url, proxy: false, retries: 0, apiKey: 'brz_test' });
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

it('a real listing, page after page, comes back whole', async () => {
  served = 0;
  page = (n) =>
    JSON.stringify({
      data: Array.from({ length: 200 }, (_, i) => keyObject(n * 200 + i, `key ${n * 200 + i}`)),
      next_cursor: n < 4 ? `c${n + 1}` : null,
    });
  const keys = await client.listAllKeys();
  expect(keys).toHaveLength(1000);
  expect(served).toBe(5);
});

it('pages just under the per-answer cap, one after the other: refused once they add up past the total bound', async () => {
  served = 0;
  // one key a page, its name nearly 4 MiB; 80 pages (320 MiB) and then the end
  const filler = 'x'.repeat(4 * 1024 * 1024 - 1024);
  const template = JSON.stringify({ data: [keyObject(0, filler)], next_cursor: 'CURSOR' });
  page = (n) => template.replace('"CURSOR"', n < 79 ? `"c${n + 1}"` : 'null');
  const err = await client.listAllKeys().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ApiError);
  expect((err as ApiError).code).toBe('UNEXPECTED_RESPONSE');
  expect((err as ApiError).message).toMatch(
    /^Unexpected response from the server: GET \/v1\/api-keys listed more than \d+ MiB of keys\.$/,
  );
  // it stopped at the bound (256 MiB: the 65th page), not after the server's last page
  expect(served).toBeLessThanOrEqual(65);
}, 60_000);
