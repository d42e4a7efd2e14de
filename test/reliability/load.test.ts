import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon, { type Result } from 'autocannon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requirePart } from '../helpers/require.js';
import {
  call,
  distReady,
  memoryAfterGc,
  rssOf,
  type ServerProcess,
  spawnFixtureServer,
} from './server-process.js';

/**
 * Load and soak, bounded for `npm test` on a small shared machine: authenticated requests spread over
 * many distinct keys against a server in its own process (the per-key rate limit on, at its default
 * 600/min), from autocannon on loopback. Reports throughput and p50/p99 latency, and samples the
 * server's RSS every second of the soak: it must stay flat once warm.
 * BREEZE_SOAK_S lengthens the soak (default 20 s); BREEZE_LOAD_KEYS the number of keys (default 1000).
 */
const skip =
  requirePart('dist build', distReady, 'dist/server/serve.js is missing (the build failed?)') ||
  requirePart('/proc', existsSync('/proc/self/status'), 'no /proc to read the server RSS from (not Linux)');

const KEYS = Number(process.env.BREEZE_LOAD_KEYS ?? 1000);
const SOAK_S = Number(process.env.BREEZE_SOAK_S ?? 20);
const CONNECTIONS = 16;

describe.skipIf(skip)('load and soak over many keys', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'breeze-load-'));
  let server: ServerProcess;
  const keys: Array<{ keyId: string; apiKey: string }> = [];

  beforeAll(async () => {
    // minting 1000 keys with one admin key would trip its own 600/min limit: mint with the limit
    // off, then restart the server on the same data with the default limit for the measurement
    const minter = await spawnFixtureServer(dataDir, { seedEmail: 'load@example.com', rateLimitPerKey: 0 });
    let n = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (n < KEYS) {
          n++;
          const res = await call(`${minter.url}/v1/api-keys`, {
            method: 'POST',
            headers: { 'xi-api-key': minter.seedKey!, 'content-type': 'application/json' },
            body: JSON.stringify({ name: `load ${n}`, scopes: ['read'] }),
          });
          if (res.status !== 201) throw new Error(`minting a key answered ${res.status}`);
          const b = res.body as { key_id: string; api_key: string };
          keys.push({ keyId: b.key_id, apiKey: b.api_key });
        }
      }),
    );
    expect(await minter.stop()).toBe(0);
    server = await spawnFixtureServer(dataDir, { rateLimitPerKey: 600, exposeGc: true });
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** Round-robin over every key: 3 of 4 requests `GET /v1/me`, 1 of 4 a key reading itself. */
  function run(durationS: number): Promise<Result> & { stop(): void } {
    let i = 0;
    return autocannon({
      url: server.url,
      connections: CONNECTIONS,
      duration: durationS,
      timeout: 10,
      requests: [
        {
          method: 'GET',
          setupRequest: (req) => {
            const k = keys[i % keys.length]!;
            const path = i % 4 === 3 ? `/v1/api-keys/${k.keyId}` : '/v1/me';
            i++;
            return { ...req, path, headers: { 'xi-api-key': k.apiKey } };
          },
        },
      ],
    });
  }

  it(`serves ${KEYS} distinct keys with zero errors and flat RSS over a ${SOAK_S} s soak`, async () => {
    expect(keys.length).toBe(KEYS);
    // warm-up: JIT, caches and pools settle before the baseline is taken
    const warm = await run(3);
    expect(warm.non2xx).toBe(0);

    const before = await memoryAfterGc(server);
    const samples: number[] = [];
    const sampler = setInterval(() => {
      const rss = rssOf(server.pid);
      if (rss) samples.push(rss);
    }, 1000);
    const start = rssOf(server.pid)!;
    let result: Result;
    // a third sample half-way: a leak grows the retained heap in both halves alike, warm-up
    // growth (caches, lazily compiled code) only in the first
    let mid: { rss: number; heapUsed: number } | undefined;
    const midTimer = setTimeout(
      () => {
        memoryAfterGc(server).then(
          (m) => {
            mid = m;
          },
          () => {},
        );
      },
      (SOAK_S * 1000) / 2,
    );
    try {
      result = await run(SOAK_S);
    } finally {
      clearInterval(sampler);
      clearTimeout(midTimer);
    }
    const end = rssOf(server.pid)!;
    const after = await memoryAfterGc(server);
    const mb = (b: number) => (b / 1048576).toFixed(1);
    const total = result.requests.total;
    console.log(
      `[load] ${KEYS} keys, ${CONNECTIONS} connections, ${result.duration} s: ${total} requests, ` +
        `${result.requests.average.toFixed(0)} req/s, latency p50 ${result.latency.p50} ms / ` +
        `p99 ${result.latency.p99} ms / max ${result.latency.max} ms, non-2xx ${result.non2xx}, ` +
        `errors ${result.errors}; server RSS start ${mb(start)} MB, end ${mb(end)} MB, ` +
        `peak ${mb(Math.max(...samples))} MB; after a full GC: RSS ${mb(before.rss)} -> ${mb(after.rss)} MB, ` +
        `heap ${mb(before.heapUsed)} -> ${mb(mid?.heapUsed ?? Number.NaN)} (half-way) -> ${mb(after.heapUsed)} MB`,
    );

    expect(result.errors).toBe(0);
    expect(result.timeouts).toBe(0);
    expect(result.non2xx).toBe(0);
    // every key was used at least once, and none hit the per-key limit (non2xx would show it)
    expect(total).toBeGreaterThan(KEYS);
    expect(result.latency.p99).toBeLessThan(1000);

    // flat: what survives a full GC barely moves over tens of thousands of requests. In the second
    // half, where warm-up is over, it grows by less than 1.5 MB (a leak of 100 bytes a request would
    // add ~2 MB there even at 2000 req/s), and by less than 4 MB over the whole soak. RSS between
    // collections is garbage awaiting the collector (V8 lets it climb to ~160 MB before a major GC),
    // so it is bounded, not required flat.
    expect(mid, 'no half-way memory sample').toBeDefined();
    expect(after.heapUsed - mid!.heapUsed).toBeLessThan(1.5 * 1048576);
    expect(after.heapUsed - before.heapUsed).toBeLessThan(4 * 1048576);
    expect(after.rss).toBeLessThan(before.rss * 1.25 + 16 * 1048576);
    expect(Math.max(...samples)).toBeLessThan(400 * 1048576);

    // the server still answers normally afterwards
    const me = await call(`${server.url}/v1/me`, { headers: { 'xi-api-key': keys[0]!.apiKey } });
    expect(me.status).toBe(200);
  }, 120_000);

  it('keeps answering promptly while 400 slow clients hold connections open (slowloris)', async () => {
    const u = new URL(server.url);
    const sockets: Socket[] = [];
    const open = (first: string) =>
      new Promise<Socket>((resolve) => {
        const sock = connect({ host: u.hostname, port: Number(u.port) }, () => {
          sock.write(first);
          resolve(sock);
        });
        sock.on('error', () => {});
        sockets.push(sock);
      });
    const rssBefore = rssOf(server.pid)!;
    // 200 that never finish their headers, 100 that promise a body and dribble it, 100 idle
    await Promise.all([
      ...Array.from({ length: 200 }, () => open(`GET /v1/me HTTP/1.1\r\nHost: ${u.host}\r\nX-Slow: `)),
      ...Array.from({ length: 100 }, () =>
        open(
          `POST /v1/api-keys HTTP/1.1\r\nHost: ${u.host}\r\nxi-api-key: ${keys[0]!.apiKey}\r\n` +
            'content-type: application/json\r\ncontent-length: 60000\r\n\r\n{"name":"',
        ),
      ),
      ...Array.from({ length: 100 }, () => open('')),
    ]);
    const dribble = setInterval(() => {
      for (const sock of sockets) if (!sock.destroyed) sock.write('a');
    }, 250);
    const latencies: number[] = [];
    const statuses = new Set<number>();
    try {
      // for 3 s (a dozen dribbles on every slow connection), a normal request every 20 ms
      const until = Date.now() + 3000;
      for (let i = 0; Date.now() < until; i++) {
        await new Promise((r) => setTimeout(r, 20));
        const t0 = performance.now();
        const res = await call(`${server.url}/v1/me`, {
          headers: { 'xi-api-key': keys[i % keys.length]!.apiKey },
        });
        latencies.push(performance.now() - t0);
        statuses.add(res.status);
      }
    } finally {
      clearInterval(dribble);
    }
    const alive = sockets.filter((sock) => !sock.destroyed).length;
    for (const sock of sockets) sock.destroy();
    latencies.sort((a, b) => a - b);
    const p = (q: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!.toFixed(1);
    console.log(
      `[load] slowloris: ${sockets.length} slow connections (${alive} still open at the end), ${latencies.length} normal requests: ` +
        `p50 ${p(0.5)} ms, p99 ${p(0.99)} ms, max ${p(1)} ms; RSS ${(rssBefore / 1048576).toFixed(1)} -> ` +
        `${(rssOf(server.pid)! / 1048576).toFixed(1)} MB`,
    );
    expect([...statuses]).toEqual([200]);
    expect(latencies[latencies.length - 1]!).toBeLessThan(2000);
  }, 60_000);
});
