import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { safeEqual } from '../../core/hash.js';

/** What the browser brought back to the loopback redirect. */
export type CallbackResult = { kind: 'code'; code: string } | { kind: 'error'; error: string };

export interface LoopbackPage {
  title: string;
  message: string;
  ok: boolean;
}

export interface PendingCallback {
  result: CallbackResult;
  /** Answers the waiting browser tab; after that the listener closes. */
  respond(page: LoopbackPage): void;
}

export interface LoopbackListener {
  /** `http://127.0.0.1:<port>/callback` */
  readonly redirectUri: string;
  /** Resolves on the first request with the right `state`; rejects when `signal` aborts. */
  wait(signal: AbortSignal): Promise<PendingCallback>;
  close(): Promise<void>;
}

const PATH = '/callback';

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const CSS =
  'body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;background:#f4f6fb;' +
  'font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827}' +
  '.card{max-width:420px;margin:16px;background:#fff;border:1px solid #e4e7ee;border-radius:16px;padding:32px;' +
  'text-align:center;box-shadow:0 12px 32px rgba(16,24,40,.08)}' +
  '.icon{width:56px;height:56px;border-radius:50%;margin:0 auto 16px;display:flex;align-items:center;' +
  'justify-content:center;font-size:28px;font-weight:700}.ok{background:#ecfdf3;color:#067647}' +
  '.bad{background:#fef3f2;color:#b42318}h1{font-size:22px;margin:0 0 8px}p{margin:0;color:#5b6475}' +
  '@media (prefers-color-scheme:dark){body{background:#0b1020;color:#e7eaf3}.card{background:#131a2c;' +
  'border-color:#26304a}p{color:#9aa3b5}}';
const CSP = `default-src 'none'; style-src 'sha256-${createHash('sha256').update(CSS).digest('base64')}'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'`;

function renderPage(page: LoopbackPage): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(page.title)} · Breeze</title><style>${CSS}</style></head><body><main class="card"><div class="icon ${page.ok ? 'ok' : 'bad'}">${page.ok ? '&#10003;' : '&#10005;'}</div><h1>${escapeHtml(page.title)}</h1><p>${escapeHtml(page.message)}</p></main></body></html>`;
}

function send(res: ServerResponse, status: number, page: LoopbackPage): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': CSP,
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
    connection: 'close',
  });
  res.end(renderPage(page));
}

/**
 * The loopback redirect target of RFC 8252: an HTTP listener on 127.0.0.1, port chosen by the OS,
 * that takes exactly one `GET /callback?code=…&state=…` (or `?error=…`) carrying our `state`,
 * lets the caller answer the tab with a friendly page, then closes. Requests with another state or
 * path are refused and do not end the wait.
 */
export async function startLoopbackListener(state: string): Promise<LoopbackListener> {
  let deliver: ((cb: PendingCallback) => void) | null = null;
  let delivered: PendingCallback | null = null;
  let answered: ServerResponse | null = null;
  let flushed: Promise<void> = Promise.resolve();

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://127.0.0.1');
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (req.method !== 'GET' || url.pathname !== PATH) {
      res
        .writeHead(404, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' })
        .end('Not found\n');
      return;
    }
    const given = url.searchParams.get('state') ?? '';
    if (delivered || !safeEqual(given, state)) {
      send(res, 400, {
        ok: false,
        title: 'This link is not for this login',
        message: 'It does not match the "breeze login" waiting in your terminal. Start the login again.',
      });
      return;
    }
    const code = url.searchParams.get('code');
    const error = url.searchParams.get('error');
    const result: CallbackResult = code
      ? { kind: 'code', code }
      : { kind: 'error', error: error ?? 'invalid_request' };
    answered = res;
    flushed = new Promise<void>((resolve) => {
      res.once('finish', resolve);
      res.once('close', resolve);
    });
    delivered = {
      result,
      respond(page) {
        if (res.writableEnded) return;
        send(res, page.ok ? 200 : 400, page);
      },
    };
    deliver?.(delivered);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    redirectUri: `http://127.0.0.1:${port}${PATH}`,
    wait(signal) {
      return new Promise<PendingCallback>((resolve, reject) => {
        if (signal.aborted) return reject(signal.reason);
        const onAbort = () => reject(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        deliver = (cb) => {
          signal.removeEventListener('abort', onAbort);
          resolve(cb);
        };
        if (delivered) deliver(delivered);
      });
    },
    async close() {
      const res = answered as ServerResponse | null;
      if (res && !res.writableEnded) {
        send(res, 400, { ok: false, title: 'Login stopped', message: 'The terminal stopped waiting.' });
      }
      // once the tab has its page, no socket of the browser (keep-alive, preconnect) may hold us
      await Promise.race([flushed, new Promise((r) => setTimeout(r, 1000).unref())]);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
