/**
 * A fake Breeze server on 127.0.0.1 for tests of what the CLI does with answers a broken or
 * malicious server could send. Routes are `METHOD /path` (the path without its query; a trailing
 * `*` matches any rest), read from `routes()` on every request so a test can swap them.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import type { CliResult } from './cli.js';

export interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  body: Record<string, unknown> | undefined;
}
export type Reply = { status: number; body?: unknown; headers?: Record<string, string> };
export type Handler = (req: Seen) => Reply;

export interface FakeServer {
  url: string;
  close(): Promise<void>;
}

/** The error shape of API.md, as the fake server sends it. */
export function apiError(
  code: string,
  message: string,
  statusCode: number,
  extra: Record<string, unknown> = {},
) {
  return { error: { code, message, statusCode, category: 'X', request_id: 'req_fake', ...extra } };
}

function route(routes: Record<string, Handler>, method: string, path: string): Handler | undefined {
  if (routes[`${method} ${path}`]) return routes[`${method} ${path}`];
  for (const [k, h] of Object.entries(routes)) {
    const [m, p] = k.split(' ');
    if (m === method && p?.endsWith('*') && path.startsWith(p.slice(0, -1))) return h;
  }
  return undefined;
}

/** Starts the fake server; every request is handed to `seen` and answered from `routes()`. */
export async function startFakeServer(hooks: {
  routes: () => Record<string, Handler>;
  seen?: (s: Seen) => void;
}): Promise<FakeServer> {
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      raw += d;
    });
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://x');
      let body: Record<string, unknown> | undefined;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {}
      const s: Seen = { method: req.method ?? 'GET', path: u.pathname, query: u.searchParams, body };
      hooks.seen?.(s);
      const h = route(hooks.routes(), s.method, s.path);
      const reply: Reply = h
        ? h(s)
        : { status: 404, body: apiError('NOT_FOUND', 'No such route on the fake server.', 404) };
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
      res.end(reply.body === undefined ? '' : JSON.stringify(reply.body));
    });
  };
  const server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** What a terminal would act on, or what changes how text reads: none may reach stdout/stderr raw. */
export const UNSAFE = /(?!\n)[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

/** Fails when stdout or stderr holds a character of UNSAFE, naming it. */
export function expectTerminalSafe(r: CliResult): void {
  for (const [name, text] of [
    ['stdout', r.stdout],
    ['stderr', r.stderr],
  ] as const) {
    const m = UNSAFE.exec(text);
    expect(m, `${name} holds U+${m?.[0].codePointAt(0)?.toString(16)}: ${JSON.stringify(text)}`).toBeNull();
  }
}
