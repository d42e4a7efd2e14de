/**
 * A server that accepts a request and never answers, or begins an answer and then stalls or breaks
 * off: the CLI's client gives up after one timeout with a NetworkError (exit 1, "timed out"),
 * instead of asking twice more and waiting the whole timeout each time, or failing with a bare
 * DOMException / undici error (no clear message, a stack trace with --verbose).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { BreezeClient } from '../../src/client/client.js';
import { NetworkError } from '../../src/client/errors.js';

let server: Server;
let url: string;
let received = 0;
let mode: 'silent' | 'trickle' | 'break' = 'silent';

beforeAll(async () => {
  server = createServer((_req, res) => {
    received++;
    if (mode === 'silent') return; // and never answer
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
    res.write('{"user":');
    if (mode === 'break') {
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    // a byte now and then: never idle long enough for a per-read timeout, never done
    const t = setInterval(() => res.write(' '), 20);
    res.on('close', () => clearInterval(t));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  received = 0;
});

it('a GET that times out is not retried', async () => {
  mode = 'silent';
  const client = new BreezeClient({ baseUrl: url, timeoutMs: 300, proxy: false });
  const started = Date.now();
  const err = await client.me().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(NetworkError);
  expect((err as Error).message).toMatch(/timed out/);
  expect(received).toBe(1);
  expect(Date.now() - started).toBeLessThan(1500);
});

it('an answer that trickles past the timeout is a NetworkError ("timed out"), not retried', async () => {
  mode = 'trickle';
  const client = new BreezeClient({ baseUrl: url, timeoutMs: 300, proxy: false });
  const started = Date.now();
  const err = await client.me().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(NetworkError);
  expect((err as Error).message).toMatch(/timed out/);
  expect(received).toBe(1);
  expect(Date.now() - started).toBeLessThan(1500);
});

it('an answer that breaks off midway is a NetworkError', async () => {
  mode = 'break';
  const client = new BreezeClient({ baseUrl: url, timeoutMs: 5000, proxy: false });
  const err = await client.me().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(NetworkError);
  expect((err as Error).message).toContain(url);
});
