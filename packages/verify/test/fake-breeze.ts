/**
 * A small stand-in for a Breeze server (node:http on 127.0.0.1, port 0) for the SDK's unit tests:
 * POST /v1/keys/verify answers from a table, GET /v1/keys/events is a real SSE stream the test
 * drives, GET /.well-known/jwks.json serves whatever keys the test sets. It counts every request.
 * (The black-box tests in test/package/ run the real server.)
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function crc32(s: string): number {
  let crc = 0xffffffff;
  for (let i = 0; i < s.length; i++) {
    crc ^= s.charCodeAt(i);
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** A well-formed Breeze key (random body, correct checksum). */
export function makeKey(): string {
  let body = 'brz_';
  for (let i = 0; i < 40; i++) body += BASE62[Math.floor(Math.random() * 62)];
  let v = crc32(body);
  let sum = '';
  while (v > 0) {
    sum = BASE62[v % 62] + sum;
    v = Math.floor(v / 62);
  }
  return body + sum.padStart(6, '0');
}

export interface FakeBreeze {
  url: string;
  verifierKey: string;
  /** answers of POST /v1/keys/verify by key; unknown keys answer NOT_FOUND */
  answers: Map<string, unknown>;
  verifyCalls: Array<{ key: string; scopes?: string[] }>;
  /** ms to wait before answering a verification */
  delayMs: number;
  /** the most verifications that were being answered at the same time */
  maxConcurrentVerifications: number;
  /** when set, POST /v1/keys/verify answers this status and raw body instead */
  override: { status: number; body: string; contentType?: string } | null;
  /** when set, GET /v1/keys/events answers this status */
  eventsStatus: number | null;
  /** ms between a resumed stream's headers and its replay of missed events (a slow server) */
  replayDelayMs: number;
  /** Last-Event-ID headers of every events connection, in order ('' for none) */
  eventConnections: string[];
  /** sends an event to every open stream (and keeps it for replay) */
  pushRevoked(keyId: string): number;
  /** sends the server's keep-alive comment (`: ping`) to every open stream */
  ping(): void;
  /** drops every open stream (clients reconnect) */
  dropStreams(): void;
  openStreams(): number;
  jwks: { keys: unknown[] };
  jwksFetches: number;
  /** when set, GET /.well-known/jwks.json answers this status */
  jwksStatus: number | null;
  /** the verifier key's organization's members (GET /v1/orgs/org_01TEST/members) */
  members: Array<{ user: { id: string; email: string }; role: string }>;
  memberFetches: number;
  close(): Promise<void>;
}

export const VALID = (keyId: string, scopes = ['read', 'write'], extra: Record<string, unknown> = {}) => ({
  valid: true,
  code: 'VALID',
  key_id: keyId,
  org_id: 'org_01TEST',
  project_id: 'proj_01TEST',
  user: { id: 'usr_01TEST', email: 'dev@example.com' },
  scopes,
  expires_at: null,
  ratelimit: { limit: 600, remaining: 599, reset_s: 60 },
  ...extra,
});

export async function startFakeBreeze(): Promise<FakeBreeze> {
  const streams = new Set<ServerResponse>();
  const history: Array<{ id: number; keyId: string }> = [];
  let nextId = 1;
  const fake: Omit<FakeBreeze, 'url' | 'close'> = {
    verifierKey: makeKey(),
    answers: new Map(),
    verifyCalls: [],
    delayMs: 0,
    maxConcurrentVerifications: 0,
    override: null,
    eventsStatus: null,
    replayDelayMs: 0,
    eventConnections: [],
    jwks: { keys: [] },
    jwksFetches: 0,
    jwksStatus: null,
    members: [],
    memberFetches: 0,
    pushRevoked(keyId) {
      const id = nextId++;
      history.push({ id, keyId });
      for (const s of streams)
        s.write(`id: ${id}\nevent: key.revoked\ndata: ${JSON.stringify({ key_id: keyId })}\n\n`);
      return id;
    },
    ping() {
      for (const s of streams) s.write(': ping\n\n');
    },
    dropStreams() {
      for (const s of streams) s.destroy();
      streams.clear();
    },
    openStreams: () => streams.size,
  };
  const body = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };
  let answering = 0;
  const server = createServer(async (req, res) => {
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': 'req_fake' });
      res.end(JSON.stringify(value));
    };
    const authorized = req.headers['x-api-key'] === fake.verifierKey;
    if (req.method === 'POST' && req.url === '/v1/keys/verify') {
      const text = await body(req);
      if (!authorized) return json(401, { error: { code: 'AUTH_REQUIRED', message: 'no', statusCode: 401 } });
      const { key, scopes } = JSON.parse(text) as { key: string; scopes?: string[] };
      fake.verifyCalls.push(scopes ? { key, scopes } : { key });
      answering++;
      fake.maxConcurrentVerifications = Math.max(fake.maxConcurrentVerifications, answering);
      res.on('close', () => answering--);
      if (fake.delayMs) await new Promise((r) => setTimeout(r, fake.delayMs));
      if (fake.override) {
        res.writeHead(fake.override.status, {
          'content-type': fake.override.contentType ?? 'application/json',
        });
        res.end(fake.override.body);
        return;
      }
      const answer = (fake.answers.get(key) ?? { valid: false, code: 'NOT_FOUND' }) as { scopes?: string[] };
      if (answer && scopes && answer.scopes && !scopes.every((s) => answer.scopes?.includes(s))) {
        return json(200, { valid: false, code: 'INSUFFICIENT_SCOPE' });
      }
      return json(200, answer);
    }
    if (req.method === 'GET' && req.url === '/v1/keys/events') {
      if (!authorized) return json(401, { error: { code: 'AUTH_REQUIRED' } });
      if (fake.eventsStatus) return json(fake.eventsStatus, { error: { code: 'INTERNAL' } });
      const last = req.headers['last-event-id'];
      fake.eventConnections.push(typeof last === 'string' ? last : '');
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      res.write(': hello\n\n');
      const replay = () => {
        if (typeof last !== 'string' || res.destroyed) return;
        for (const e of history) {
          if (e.id > Number(last)) {
            res.write(`id: ${e.id}\nevent: key.revoked\ndata: ${JSON.stringify({ key_id: e.keyId })}\n\n`);
          }
        }
      };
      if (fake.replayDelayMs > 0) setTimeout(replay, fake.replayDelayMs);
      else replay();
      streams.add(res);
      res.on('close', () => streams.delete(res));
      return;
    }
    if (req.method === 'GET' && req.url === '/v1/me') {
      if (!authorized) return json(401, { error: { code: 'AUTH_REQUIRED' } });
      return json(200, {
        user: { id: 'usr_01TEST', email: 'dev@example.com' },
        auth: { type: 'api_key', key_id: 'key_01VERIFIER', scopes: ['read', 'verify'] },
        org: { id: 'org_01TEST', name: 'Test', role: 'owner' },
        project: { id: 'proj_01TEST', name: 'default' },
      });
    }
    if (req.method === 'GET' && req.url === '/v1/orgs/org_01TEST/members') {
      if (!authorized) return json(401, { error: { code: 'AUTH_REQUIRED' } });
      fake.memberFetches++;
      return json(200, { data: fake.members.map((m) => ({ ...m, joined_at: '2026-01-01T00:00:00.000Z' })) });
    }
    if (req.method === 'GET' && req.url === '/.well-known/jwks.json') {
      fake.jwksFetches++;
      if (fake.jwksStatus) return json(fake.jwksStatus, { error: { code: 'INTERNAL' } });
      return json(200, fake.jwks);
    }
    json(404, { error: { code: 'NOT_FOUND' } });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return Object.assign(fake, {
    url: `http://127.0.0.1:${port}`,
    async close() {
      fake.dropStreams();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  });
}

/** Polls `check` every 10 ms until it holds (or fails after `ms`). */
export async function until(check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
