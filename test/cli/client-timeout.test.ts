/**
 * A server that accepts a request and never answers: the CLI's client gives up after one timeout
 * (exit 1, "timed out"), instead of asking twice more and waiting the whole timeout each time.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BreezeClient } from '../../src/client/client.js';
import { NetworkError } from '../../src/client/errors.js';

let server: Server;
let url: string;
let received = 0;

beforeAll(async () => {
  server = createServer(() => {
    received++; // and never answer
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

it('a GET that times out is not retried', async () => {
  const client = new BreezeClient({ baseUrl: url, timeoutMs: 300, proxy: false });
  const started = Date.now();
  const err = await client.me().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(NetworkError);
  expect((err as Error).message).toMatch(/timed out/);
  expect(received).toBe(1);
  expect(Date.now() - started).toBeLessThan(1500);
});
