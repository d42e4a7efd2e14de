import { webcrypto } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { importJWK, type JWK } from 'jose';

/** One request a receiver got: headers and the raw body exactly as sent. */
export interface ReceivedHook {
  headers: IncomingHttpHeaders;
  raw: string;
  at: number;
}

/**
 * A webhook receiver on loopback (plain http: the server under test runs with
 * `allowPrivateWebhooks`). `answers` is a queue of status codes for the next requests (then 200);
 * `'hang'` never answers. `connections` counts TCP connections, so a refused target can be shown
 * to have reached nothing.
 */
export interface Receiver {
  url: string;
  port: number;
  received: ReceivedHook[];
  connections: number;
  answers: (number | 'hang')[];
  waitFor(n: number, timeoutMs?: number): Promise<ReceivedHook[]>;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const hung: (() => void)[] = [];
  const r: Receiver = {
    url: '',
    port: 0,
    received: [],
    connections: 0,
    answers: [],
    async waitFor(n, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      while (r.received.length < n) {
        if (Date.now() > until)
          throw new Error(`receiver got ${r.received.length} of ${n} deliveries in ${timeoutMs} ms`);
        await new Promise((res) => setTimeout(res, 20));
      }
      return r.received;
    },
    async close() {
      for (const h of hung) h();
      server.closeAllConnections();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.received.push({ headers: req.headers, raw: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      const answer = r.answers.shift() ?? 200;
      if (answer === 'hang') {
        hung.push(() => res.destroy());
        return;
      }
      if (answer >= 300 && answer < 400) res.setHeader('location', `${r.url}/elsewhere`);
      res.statusCode = answer;
      res.end('ok');
    });
  });
  server.on('connection', () => {
    r.connections++;
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  r.port = (server.address() as AddressInfo).port;
  r.url = `http://127.0.0.1:${r.port}`;
  return r;
}

/** The parts of a `breeze-signature` header. */
export function parseSignature(header: string | string[] | undefined): {
  t: string;
  kid: string;
  sig: string;
} {
  const parts = Object.fromEntries(
    String(header ?? '')
      .split(',')
      .map((p) => {
        const i = p.indexOf('=');
        return [p.slice(0, i).trim(), p.slice(i + 1).trim()];
      }),
  ) as Record<string, string>;
  return { t: parts.t ?? '', kid: parts.kid ?? '', sig: parts.sig ?? '' };
}

/**
 * What a receiver does (PLATFORM.md "Webhooks"): finds the header's `kid` in the JWKS, imports it
 * with jose and checks the Ed25519 signature over `"<t>.<raw body>"`. True when it verifies.
 */
export async function verifyWithJwks(
  jwks: { keys: JWK[] },
  header: string | string[] | undefined,
  raw: string,
): Promise<boolean> {
  const { t, kid, sig } = parseSignature(header);
  const jwk = jwks.keys.find((k) => k.kid === kid);
  if (!jwk || !/^\d+$/.test(t)) return false;
  const key = (await importJWK({ ...jwk, alg: 'Ed25519' }, 'Ed25519')) as webcrypto.CryptoKey;
  return webcrypto.subtle.verify(
    'Ed25519',
    key,
    Buffer.from(sig, 'base64url'),
    Buffer.from(`${t}.${raw}`, 'utf8'),
  );
}
