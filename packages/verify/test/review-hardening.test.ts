/**
 * Review findings (rv-sdk): hostile clients and hostile or broken servers must neither crash the
 * service nor make it use unbounded memory or flood Breeze.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { breezeExpress } from '../src/express.js';
import { createVerifier, type Verifier, type VerifierOptions } from '../src/verifier.js';
import { type FakeBreeze, makeKey, startFakeBreeze, VALID } from './fake-breeze.js';

let fake: FakeBreeze;
const verifiers: Verifier[] = [];
const servers: Server[] = [];

beforeEach(async () => {
  fake = await startFakeBreeze();
});
afterEach(async () => {
  await Promise.all(verifiers.splice(0).map((v) => v.close()));
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    s.close();
  }
  await fake.close();
});

function verifier(o: Partial<VerifierOptions> = {}): Verifier {
  const v = createVerifier({ server: fake.url, apiKey: fake.verifierKey, events: false, ...o });
  verifiers.push(v);
  return v;
}

describe('Express middleware when the response was started while Breeze was asked', () => {
  it('does not throw out of the middleware (an unhandled rejection ends the process)', async () => {
    const key = makeKey();
    fake.answers.set(key, VALID('key_A'));
    fake.delayMs = 300;
    const rejections: unknown[] = [];
    const onRejection = (err: unknown) => rejections.push(err);
    process.on('unhandledRejection', onRejection);
    const errors: unknown[] = [];
    let handlerRan = false;
    try {
      const app = express();
      // a request timeout (like connect-timeout) answers while the guard still waits for Breeze
      app.use((_req, res, next) => {
        const t = setTimeout(() => {
          if (!res.headersSent) res.status(503).json({ error: 'timeout' });
        }, 50);
        res.on('finish', () => clearTimeout(t));
        next();
      });
      app.use(breezeExpress({ verifier: verifier() }));
      app.get('/', (_req, res) => {
        handlerRan = true;
        if (!res.headersSent) res.json({ ok: true });
      });
      app.use((err: unknown, _req: unknown, _res: unknown, next: (e?: unknown) => void) => {
        errors.push(err);
        next(err);
      });
      const server = app.listen(0, '127.0.0.1');
      servers.push(server);
      await once(server, 'listening');
      const { port } = server.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { 'x-api-key': key } });
      expect(res.status).toBe(503);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      process.off('unhandledRejection', onRejection);
    }
    expect(rejections).toEqual([]);
    expect(handlerRan).toBe(false);
    expect(errors).toHaveLength(1);
  });
});

/** A token of the right shape (not validly signed: the JWKS is never read successfully here). */
const FORGED = 'eyJhbGciOiJFZDI1NTE5Iiwia2lkIjoiazEifQ.eyJzdWIiOiJ1c3JfMSJ9.c2lnbmF0dXJlc2lnbmF0dXJl';

describe('the JWKS, read by the JWT check', () => {
  it('a JWKS that fails is not refetched for every token: a flood of tokens makes about one read a second', async () => {
    let reads = 0;
    const fetch: typeof globalThis.fetch = async (url, init) => {
      if (String(url).endsWith('/.well-known/jwks.json')) {
        reads++;
        return new Response('{"error":{"code":"INTERNAL"}}', { status: 500 });
      }
      return globalThis.fetch(url, init);
    };
    const v = verifier({ fetch, allowJwt: () => true });
    for (let i = 0; i < 30; i++) {
      await expect(v.verify(FORGED)).rejects.toMatchObject({ name: 'BreezeVerifyError' });
    }
    expect(reads).toBe(1);
  });

  it('never reads a huge JWKS answer whole (bounded memory), and never says valid', async () => {
    let sent = 0;
    const fetch: typeof globalThis.fetch = async (url, init) => {
      if (!String(url).endsWith('/.well-known/jwks.json')) return globalThis.fetch(url, init);
      const chunk = new Uint8Array(1 << 20).fill(0x20);
      let i = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          if (i++ === 0) c.enqueue(new TextEncoder().encode('{"keys":['));
          else if (i > 200) {
            c.enqueue(new TextEncoder().encode(']}'));
            c.close();
          } else {
            sent += chunk.byteLength;
            c.enqueue(chunk);
          }
        },
      });
      return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
    };
    const v = verifier({ fetch, allowJwt: () => true });
    await expect(v.verify(FORGED)).rejects.toMatchObject({ name: 'BreezeVerifyError', code: 'BAD_RESPONSE' });
    expect(sent).toBeLessThan(4 << 20);
  });
});

/** A fetch whose /v1/keys/events answers `stream()` (counted); everything else goes to the fake. */
function eventsFetch(stream: () => ReadableStream<Uint8Array>) {
  const seen = { connections: 0 };
  const fetch: typeof globalThis.fetch = async (url, init) => {
    if (!String(url).endsWith('/v1/keys/events')) return globalThis.fetch(url, init);
    seen.connections++;
    return new Response(stream(), { status: 200, headers: { 'content-type': 'text/event-stream' } });
  };
  return { fetch, seen };
}

describe('the revocation stream, from a broken server or proxy', () => {
  it('data lines that never end an event do not grow memory without bound: the stream is dropped', async () => {
    const line = new TextEncoder().encode(`data: ${'x'.repeat(1000)}\n`);
    let sent = 0;
    const { fetch } = eventsFetch(
      () =>
        new ReadableStream<Uint8Array>({
          pull(c) {
            // ~50 MB in all, never a blank line
            if (sent > 50 << 20) return new Promise(() => {});
            sent += line.byteLength;
            c.enqueue(line);
          },
        }),
    );
    const errors: Error[] = [];
    verifier({ fetch, events: true, jwt: false, onError: (e) => errors.push(e) });
    const started = Date.now();
    while (errors.length === 0 && Date.now() - started < 5000) await new Promise((r) => setTimeout(r, 20));
    expect(errors[0]).toMatchObject({ name: 'BreezeVerifyError', code: 'BAD_RESPONSE' });
    expect(sent).toBeLessThan(4 << 20);
  });

  it('a stream that is accepted and ends at once is retried with a growing delay, not 4 times a second', async () => {
    const { fetch, seen } = eventsFetch(
      () =>
        new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(new TextEncoder().encode(': connected\n\n'));
            c.close();
          },
        }),
    );
    verifier({ fetch, events: true, jwt: false, onError: () => {} });
    await new Promise((r) => setTimeout(r, 3000));
    // 250 ms doubling (with jitter): at most 5 in 3 s; resetting the backoff on each connection made 12 or more
    expect(seen.connections).toBeLessThanOrEqual(6);
  });
});
