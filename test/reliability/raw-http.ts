import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';

/**
 * True when any 127.x.y.z can be a source address (Linux routes all of 127/8 to `lo`; macOS only
 * 127.0.0.1 unless aliased). The abuse suites use distinct loopback addresses as distinct clients.
 */
export const loopbackAliases =
  process.platform === 'linux' &&
  Object.values(networkInterfaces())
    .flat()
    .some((i) => i?.internal && i.family === 'IPv4' && i.cidr === '127.0.0.1/8');

/**
 * A tiny HTTP/1.1 client over node:net: it sends exactly the bytes it is given (invalid UTF-8,
 * broken chunked framing, lying Content-Length, truncated bodies...) and parses whatever comes back.
 */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  /** all `set-cookie` lines */
  cookies: string[];
  body: Buffer;
}

export interface RawResult {
  responses: RawResponse[];
  /** the server closed (or reset) without a complete response */
  incomplete: boolean;
  timedOut: boolean;
  error?: string;
}

/** Parses back-to-back HTTP/1.1 responses; stops at the first incomplete one. */
export function parseResponses(
  buf: Buffer,
  closed: boolean,
  head = false,
): { responses: RawResponse[]; rest: Buffer } {
  const responses: RawResponse[] = [];
  let at = 0;
  while (at < buf.length) {
    const headEnd = buf.indexOf('\r\n\r\n', at);
    if (headEnd === -1) break;
    const lines = buf.subarray(at, headEnd).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (!m) break;
    const headers: Record<string, string> = {};
    const cookies: string[] = [];
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      if (i <= 0) continue;
      const name = line.slice(0, i).trim().toLowerCase();
      const value = line.slice(i + 1).trim();
      if (name === 'set-cookie') cookies.push(value);
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    let p = headEnd + 4;
    let body: Buffer;
    const status = Number(m[1]);
    if (head && status !== 100) {
      // a response to HEAD has headers only, whatever its Content-Length says
      body = Buffer.alloc(0);
    } else if (headers['transfer-encoding']?.toLowerCase().includes('chunked')) {
      const parts: Buffer[] = [];
      let complete = false;
      for (;;) {
        const eol = buf.indexOf('\r\n', p);
        if (eol === -1) break;
        const size = Number.parseInt(buf.subarray(p, eol).toString('latin1'), 16);
        if (Number.isNaN(size)) break;
        if (size === 0) {
          const end = buf.indexOf('\r\n\r\n', eol);
          if (end === -1 && buf.length < eol + 4) break;
          p = end === -1 ? eol + 4 : end + 4;
          complete = true;
          break;
        }
        if (buf.length < eol + 2 + size + 2) break;
        parts.push(buf.subarray(eol + 2, eol + 2 + size));
        p = eol + 2 + size + 2;
      }
      if (!complete) break;
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const len = Number(headers['content-length']);
      if (buf.length < p + len) break;
      body = buf.subarray(p, p + len);
      p += len;
    } else if (status === 204 || status === 304 || status < 200) {
      body = Buffer.alloc(0);
    } else {
      if (!closed) break;
      body = buf.subarray(p);
      p = buf.length;
    }
    responses.push({ status, headers, cookies, body });
    at = p;
  }
  return { responses, rest: buf.subarray(at) };
}

/**
 * Sends `bytes` to `origin` (http://host:port) and collects responses until the server closes, the
 * expected number of responses arrived, or `timeoutMs` passes. `halfClose` ends our side right after
 * sending (a truncated body is then a client that went away).
 */
export function sendRaw(
  origin: string,
  bytes: Buffer | Buffer[],
  opts: {
    localAddress?: string;
    timeoutMs?: number;
    halfClose?: boolean;
    expect?: number;
    head?: boolean;
  } = {},
): Promise<RawResult> {
  const u = new URL(origin);
  const parts = Array.isArray(bytes) ? bytes : [bytes];
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let timedOut = false;
    let error: string | undefined;
    const socket = connect({ host: u.hostname, port: Number(u.port), localAddress: opts.localAddress });
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, opts.timeoutMs ?? 5000);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      if (opts.expect) {
        const { responses } = parseResponses(Buffer.concat(chunks), false, opts.head);
        if (responses.length >= opts.expect) socket.destroy();
      }
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const { responses, rest } = parseResponses(all, true, opts.head);
      resolve({ responses, incomplete: rest.length > 0 || responses.length === 0, timedOut, error });
    });
    socket.on('connect', () => {
      for (const p of parts) socket.write(p);
      if (opts.halfClose !== false) socket.end();
    });
  });
}

export interface SimpleRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  localAddress?: string;
}

/** A well-formed request (Host, Content-Length, Connection: close), sent raw. */
export async function rawRequest(origin: string, req: SimpleRequest): Promise<RawResponse> {
  const u = new URL(origin);
  const body = req.body === undefined ? undefined : Buffer.from(req.body);
  const headers: Record<string, string> = { host: u.host, connection: 'close', ...req.headers };
  if (body) headers['content-length'] = String(body.length);
  const head = `${req.method ?? 'GET'} ${req.path} HTTP/1.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
  const res = await sendRaw(
    origin,
    body ? [Buffer.from(head, 'latin1'), body] : Buffer.from(head, 'latin1'),
    {
      localAddress: req.localAddress,
      halfClose: false,
      expect: 1,
    },
  );
  const first = res.responses[0];
  if (!first) throw new Error(`no response to ${req.method ?? 'GET'} ${req.path} (${res.error ?? 'closed'})`);
  return first;
}

/** `name=value` of each Set-Cookie line. */
export function cookiePairs(res: RawResponse): Record<string, string> {
  const out: Record<string, string> = {};
  for (const c of res.cookies) {
    const pair = c.split(';')[0] ?? '';
    const i = pair.indexOf('=');
    if (i > 0) out[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return out;
}

export function form(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

/** The `value` of `<input name="...">` in a page. */
export function inputValue(html: string, name: string): string | undefined {
  const m = new RegExp(`name="${name}"[^>]*value="([^"]*)"`).exec(html);
  return m?.[1];
}

/**
 * Opens a login's Approve page the way a person does: the code typed into `/device` (a link alone
 * shows no Approve for a login from another device). Returns the page; its Approve form's fields
 * are `csrf`, `user_code` and, in device mode, `typed`.
 */
export async function typeUserCode(
  origin: string,
  cookie: string,
  userCode: string,
  localAddress?: string,
): Promise<RawResponse> {
  const entry = await rawRequest(origin, { path: '/device', headers: { cookie }, localAddress });
  return rawRequest(origin, {
    method: 'POST',
    path: '/device',
    localAddress,
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ csrf: inputValue(entry.body.toString('utf8'), 'csrf') ?? '', user_code: userCode }),
  });
}

/** The newest dev-outbox mail to `to` carrying a code (its subject is `Your Breeze code: <CODE>`). */
export function latestCode(dataDir: string, to: string): { code: string; file: string } | undefined {
  const dir = join(dataDir, 'outbox');
  let names: string[] = [];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.eml'));
  } catch {
    return undefined;
  }
  // file names start with an ISO timestamp: newest last
  for (const n of names.sort().reverse()) {
    const text = readFileSync(join(dir, n), 'utf8');
    if (!text.includes(`To: ${to}\r\n`)) continue;
    const m = /Subject: Your Breeze code: ([0-9A-Z]{8})/.exec(text);
    if (m) return { code: m[1]!, file: n };
  }
  return undefined;
}

/**
 * Signs a browser in through the pages (GET /login, POST /login, mailed code, POST /login/code) and
 * returns its session cookie value.
 */
export async function browserSignIn(
  origin: string,
  dataDir: string,
  email: string,
  localAddress?: string,
): Promise<string> {
  return (await browserSignInDetailed(origin, dataDir, email, localAddress)).session;
}

/** `browserSignIn`, also returning the mailed code it used. */
export async function browserSignInDetailed(
  origin: string,
  dataDir: string,
  email: string,
  localAddress?: string,
): Promise<{ session: string; code: string }> {
  const page = await rawRequest(origin, { path: '/login', localAddress });
  const formCookie = cookiePairs(page).breeze_form!;
  const csrf = inputValue(page.body.toString('utf8'), 'csrf')!;
  const cookie = `breeze_form=${formCookie}`;
  const sent = await rawRequest(origin, {
    method: 'POST',
    path: '/login',
    localAddress,
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ csrf, email, next: '/device' }),
  });
  if (sent.status !== 200) throw new Error(`POST /login answered ${sent.status}`);
  const codeId = inputValue(sent.body.toString('utf8'), 'code_id')!;
  let code: string | undefined;
  for (let i = 0; i < 50 && !code; i++) {
    code = latestCode(dataDir, email)?.code;
    if (!code) await new Promise((r) => setTimeout(r, 50));
  }
  if (!code) throw new Error(`no code mailed to ${email}`);
  const done = await rawRequest(origin, {
    method: 'POST',
    path: '/login/code',
    localAddress,
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: form({ csrf, email, code, code_id: codeId, next: '/device' }),
  });
  const session = cookiePairs(done).breeze_session;
  if (done.status !== 303 || !session) throw new Error(`POST /login/code answered ${done.status}`);
  return { session, code };
}
