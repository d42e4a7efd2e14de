import type { Dispatcher } from 'undici';
import { clampText } from '../core/text.js';
import type {
  ApiKeyInfo,
  CliLoginExchangeResult,
  CliLoginRequest,
  CliLoginStart,
  CreatedKeyResponse,
  KeyListResponse,
  KeyStatus,
  MeResponse,
  RotatedKeyResponse,
  Scope,
} from '../core/types.js';
import { ApiError, NetworkError } from './errors.js';
import { redactBody, redactHeaders, redactUrl } from './redact.js';
import {
  checkCreatedKey,
  checkEmailCodeStart,
  checkEmailVerification,
  checkKey,
  checkKeyPage,
  checkLoginExchange,
  checkLoginStart,
  checkMe,
  checkRotatedKey,
} from './validate.js';

export { ApiError, NetworkError } from './errors.js';

/** A server reached over a unix socket (ClientOptions.socket); shared by the clients made from one. */
export interface SocketTarget {
  path: string;
  /** the server's TCP URL: what pages and links use, and the client's `baseUrl` */
  url: string;
  /**
   * Called when a connection found the socket gone or refused (the server left: idle, stopped or
   * killed; the request was never sent): finds or starts the server again and updates `path` and
   * `url`. The attempt is then made again, a POST too.
   */
  reconnect?: () => Promise<void>;
}

export interface ClientOptions {
  /** e.g. `http://127.0.0.1:4455` (no trailing slash needed) */
  baseUrl: string;
  /** sent as `xi-api-key` */
  apiKey?: string;
  /** `breeze/<version>` */
  userAgent?: string;
  /** per attempt; default 30 s */
  timeoutMs?: number;
  /** extra attempts on network errors and 429; default 2 */
  retries?: number;
  /** longest `Retry-After` honoured by waiting (longer ones are thrown); default 60 s */
  maxRetryAfterS?: number;
  /** told before each wait on a 429, so a person is not left looking at a silent command */
  onRateLimited?: (info: { waitS: number; requestId: string | null }) => void;
  /** cancels requests and retry waits (Ctrl-C) */
  signal?: AbortSignal;
  /** honour HTTPS_PROXY / HTTP_PROXY / NO_PROXY (default true) */
  proxy?: boolean;
  dispatcher?: Dispatcher;
  /**
   * Send every request over this unix socket with node:http instead of TCP with undici (the resident
   * embedded server: `baseUrl` is then `socket.url`, its TCP URL, the one pages and links use).
   * undici is not loaded.
   */
  socket?: SocketTarget;
  /** `--verbose`: one line at a time, secrets already redacted */
  trace?: (line: string) => void;
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  /** send the API key (default true when the client has one) */
  auth?: boolean;
  headers?: Record<string, string>;
  /** override the client's retry policy for this call */
  retries?: number;
}

export interface ApiResponse<T> {
  status: number;
  body: T;
  headers: Record<string, string | string[] | undefined>;
  requestId: string | null;
  /** the size of the answer's body as read, in bytes */
  bytes: number;
}

// POSTs are retried on network errors only when the request cannot have reached the server
// (ENOENT: a unix socket that is gone)
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOENT', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

const dispatchers = new Map<string, Dispatcher>();
type Undici = typeof import('undici');
// loaded on first use: a client over a unix socket never pays for undici
let undiciModule: Undici | undefined;
async function loadUndici(): Promise<Undici> {
  undiciModule ??= await import('undici');
  return undiciModule;
}
function sharedDispatcher(undici: Undici, proxy: boolean, timeoutMs: number): Dispatcher {
  const { Agent, EnvHttpProxyAgent } = undici;
  const k = `${proxy}:${timeoutMs}`;
  let d = dispatchers.get(k);
  if (!d) {
    const opts = {
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      connect: { timeout: Math.min(timeoutMs, 10_000) },
    };
    d = proxy ? new EnvHttpProxyAgent(opts) : new Agent(opts);
    dispatchers.set(k, d);
  }
  return d;
}

/**
 * Typed client of the Breeze HTTP API (API.md) over undici. Errors: `ApiError` (`code`, `status`,
 * `requestId`) for error answers, `NetworkError` when no answer came.
 */
export class BreezeClient {
  private readonly fixedBaseUrl: string;
  constructor(private readonly opts: ClientOptions) {
    this.fixedBaseUrl = opts.baseUrl.replace(/\/+$/, '');
  }

  /** The server's URL (over a socket: its TCP URL, which a reconnect may change). */
  get baseUrl(): string {
    return this.opts.socket ? this.opts.socket.url.replace(/\/+$/, '') : this.fixedBaseUrl;
  }

  /** the same client sending another key */
  withKey(apiKey: string | undefined): BreezeClient {
    return new BreezeClient({ ...this.opts, apiKey });
  }

  get hasKey(): boolean {
    return Boolean(this.opts.apiKey);
  }

  /** One API call with retries; resolves for 2xx, throws ApiError / NetworkError otherwise. */
  async request<T>(method: string, path: string, o: RequestOptions = {}): Promise<ApiResponse<T>> {
    let url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(o.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = {
      accept: 'application/json',
      'user-agent': this.opts.userAgent ?? 'breeze',
      ...o.headers,
    };
    if (this.opts.apiKey && o.auth !== false) headers['xi-api-key'] = this.opts.apiKey;
    let payload: string | undefined;
    if (o.body !== undefined) {
      payload = JSON.stringify(o.body);
      headers['content-type'] = 'application/json';
    }
    const retries = o.retries ?? this.opts.retries ?? 2;
    const timeoutMs = this.opts.timeoutMs ?? 30_000;
    const socket = this.opts.socket;
    const undici = socket ? undefined : (undiciModule ?? (await loadUndici()));
    const dispatcher = undici
      ? (this.opts.dispatcher ?? sharedDispatcher(undici, this.opts.proxy !== false, timeoutMs))
      : undefined;
    // a server reached over its socket is looked for again at most once per request (see below)
    let reconnected = false;
    for (let attempt = 0; ; attempt++) {
      // (redacting costs: only with a trace, i.e. --verbose)
      if (this.opts.trace) {
        this.trace(`> ${method} ${redactUrl(url.toString())}`);
        for (const [k, v] of Object.entries(redactHeaders(headers))) this.trace(`> ${k}: ${v}`);
        if (payload) this.trace(`> ${redactBody(payload)}`);
      }
      // Date, not performance.now(): the latter loads node:perf_hooks on first use
      const started = Date.now();
      let res: Answer;
      try {
        const signals = [AbortSignal.timeout(timeoutMs)];
        if (this.opts.signal) signals.push(this.opts.signal);
        const signal = AbortSignal.any(signals);
        res = socket
          ? await requestOverSocket(socket.path, url, method, headers, payload, signal)
          : await undici!.request(url, {
              method: method as Dispatcher.HttpMethod,
              headers,
              body: payload,
              dispatcher,
              signal,
            });
      } catch (err) {
        if (this.opts.signal?.aborted) throw this.opts.signal.reason ?? err;
        const code = (err as { code?: string }).code ?? (err as Error).name;
        this.trace(`< network error: ${code}`);
        // a server that took the request and never answered is not asked again: each try would
        // wait the whole timeout (three tries: minutes before "cannot reach")
        const timedOut =
          (err as Error).name === 'TimeoutError' ||
          code === 'UND_ERR_HEADERS_TIMEOUT' ||
          code === 'UND_ERR_BODY_TIMEOUT';
        if (socket?.reconnect && !reconnected && (code === 'ENOENT' || code === 'ECONNREFUSED')) {
          // the server is gone (it left after the CLI found it, or the CLI trusted a record whose
          // server died): nothing was sent, so whatever the retry policy, find or start one (its
          // errors are the caller's, thrown as they are) and send it there; a new server has a new
          // port, so a new URL. Not counted as a try.
          reconnected = true;
          await socket.reconnect();
          url = new URL(this.baseUrl + path + url.search);
          this.trace(`* again, on ${socket.path}`);
          attempt--;
          continue;
        }
        const retriable = !timedOut && (IDEMPOTENT.has(method) || NEVER_SENT.has(code));
        if (attempt < retries && retriable) {
          await this.sleep(250 * 4 ** attempt);
          continue;
        }
        throw new NetworkError(`Cannot reach ${this.baseUrl}: ${describeNetworkError(err)}`, url.toString(), {
          cause: err,
        });
      }
      let text: string;
      let bytes: number;
      try {
        ({ text, bytes } = await readCapped(
          res.body,
          MAX_RESPONSE_BYTES,
          res.statusCode,
          safeToken(headerValue(res.headers['x-request-id'])) ?? null,
        ));
      } catch (err) {
        if (err instanceof ApiError) throw err;
        if (this.opts.signal?.aborted) throw this.opts.signal.reason ?? err;
        // the answer began and then stalled (a body that trickles past the timeout) or broke off:
        // the request reached the server, so it is not sent again
        this.trace(
          `< network error while reading the answer: ${(err as { code?: string }).code ?? (err as Error).name}`,
        );
        throw new NetworkError(
          `${this.baseUrl} stopped answering mid-response: ${describeNetworkError(err)}`,
          url.toString(),
          { cause: err },
        );
      }
      const ms = Date.now() - started;
      const requestId = safeToken(headerValue(res.headers['x-request-id'])) ?? null;
      if (this.opts.trace) {
        this.trace(`< ${res.statusCode} (${ms} ms)`);
        for (const [k, v] of Object.entries(redactHeaders(res.headers))) this.trace(`< ${k}: ${v}`);
        if (text) this.trace(`< ${redactBody(text)}`);
      }
      if (res.statusCode >= 200 && res.statusCode < 300) {
        let body: unknown;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          throw new ApiError(`The server sent a response that is not JSON (HTTP ${res.statusCode}).`, {
            code: 'UNEXPECTED_RESPONSE',
            status: res.statusCode,
            requestId,
          });
        }
        return { status: res.statusCode, body: body as T, headers: res.headers, requestId, bytes };
      }
      const error = toApiError(res.statusCode, text, requestId, headerValue(res.headers['retry-after']));
      const maxWait = this.opts.maxRetryAfterS ?? 60;
      if (res.statusCode === 429 && attempt < retries && (error.retryAfter ?? 1) <= maxWait) {
        const waitS = error.retryAfter ?? 2 ** attempt;
        this.opts.onRateLimited?.({ waitS, requestId });
        await this.sleep(waitS * 1000);
        continue;
      }
      throw error;
    }
  }

  private trace(line: string): void {
    this.opts.trace?.(line);
  }

  private sleep(ms: number): Promise<void> {
    const signal = this.opts.signal;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(t);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  // --- typed methods (API.md) ---

  /** `GET /v1/me`; `retries`: as RequestOptions (a lookup that may simply go without: 0) */
  async me(o: { retries?: number } = {}): Promise<MeResponse> {
    return checkMe('GET /v1/me', (await this.request<unknown>('GET', '/v1/me', { retries: o.retries })).body);
  }

  /** `GET /v1/api-keys` (one page) */
  async listKeys(
    q: { limit?: number; cursor?: string; status?: KeyStatus; project_id?: string } = {},
  ): Promise<KeyListResponse> {
    return (await this.keyPage(q)).page;
  }

  private async keyPage(q: {
    limit?: number;
    cursor?: string;
    status?: KeyStatus;
    project_id?: string;
  }): Promise<{ page: KeyListResponse; bytes: number }> {
    const res = await this.request<unknown>('GET', '/v1/api-keys', { query: q });
    return { page: checkKeyPage('GET /v1/api-keys', res.body), bytes: res.bytes };
  }

  /** every page of `GET /v1/api-keys`, at most MAX_LISTING_BYTES of answers in all */
  async listAllKeys(q: { status?: KeyStatus; project_id?: string } = {}): Promise<ApiKeyInfo[]> {
    const all: ApiKeyInfo[] = [];
    const seen = new Set<string>();
    let cursor: string | undefined;
    let total = 0;
    do {
      const { page, bytes } = await this.keyPage({ ...q, limit: 200, cursor });
      // every key is kept: pages each under the answer cap must not add up to gigabytes
      total += bytes;
      if (total > MAX_LISTING_BYTES) {
        throw unexpectedResponse(
          `GET /v1/api-keys listed more than ${MAX_LISTING_BYTES / 1048576} MiB of keys`,
        );
      }
      if (
        !Array.isArray(page?.data) ||
        !(typeof page.next_cursor === 'string' || page.next_cursor === null)
      ) {
        throw unexpectedResponse('GET /v1/api-keys did not return {"data": [...], "next_cursor"}');
      }
      all.push(...page.data);
      cursor = page.next_cursor ?? undefined;
      // a server that hands out the same cursor twice (or pages without end) would loop forever
      if (cursor !== undefined && (seen.has(cursor) || seen.size >= MAX_PAGES)) {
        throw unexpectedResponse('GET /v1/api-keys kept paging without end');
      }
      if (cursor !== undefined) seen.add(cursor);
    } while (cursor);
    return all;
  }

  async getKey(keyId: string): Promise<ApiKeyInfo> {
    return checkKey(
      'GET /v1/api-keys/:key_id',
      (await this.request<unknown>('GET', `/v1/api-keys/${encodeURIComponent(keyId)}`)).body,
    );
  }

  async createKey(body: {
    name: string;
    scopes?: Scope[];
    expires_in_s?: number;
    expires_at?: string;
    project_id?: string;
  }): Promise<CreatedKeyResponse> {
    return checkCreatedKey(
      'POST /v1/api-keys',
      (await this.request<unknown>('POST', '/v1/api-keys', { body })).body,
    );
  }

  async updateKey(keyId: string, body: { name?: string; scopes?: Scope[] }): Promise<ApiKeyInfo> {
    return checkKey(
      'PATCH /v1/api-keys/:key_id',
      (await this.request<unknown>('PATCH', `/v1/api-keys/${encodeURIComponent(keyId)}`, { body })).body,
    );
  }

  async rotateKey(keyId: string, body: { grace_period_s?: number } = {}): Promise<RotatedKeyResponse> {
    return checkRotatedKey(
      'POST /v1/api-keys/:key_id/rotate',
      (await this.request<unknown>('POST', `/v1/api-keys/${encodeURIComponent(keyId)}/rotate`, { body }))
        .body,
    );
  }

  async disableKey(keyId: string): Promise<ApiKeyInfo> {
    return checkKey(
      'POST /v1/api-keys/:key_id/disable',
      (await this.request<unknown>('POST', `/v1/api-keys/${encodeURIComponent(keyId)}/disable`)).body,
    );
  }

  async enableKey(keyId: string): Promise<ApiKeyInfo> {
    return checkKey(
      'POST /v1/api-keys/:key_id/enable',
      (await this.request<unknown>('POST', `/v1/api-keys/${encodeURIComponent(keyId)}/enable`)).body,
    );
  }

  async deleteKey(keyId: string): Promise<void> {
    await this.request<void>('DELETE', `/v1/api-keys/${encodeURIComponent(keyId)}`);
  }

  /** `POST /v1/cli/logins` (anonymous) */
  async startCliLogin(body: CliLoginRequest): Promise<CliLoginStart> {
    return checkLoginStart(
      'POST /v1/cli/logins',
      (await this.request<unknown>('POST', '/v1/cli/logins', { body, auth: false })).body,
    );
  }

  /** `POST /v1/cli/logins/:id/exchange` (anonymous; no automatic retry: the caller polls) */
  async exchangeCliLogin(
    loginId: string,
    body: { code_verifier: string; code?: string },
  ): Promise<CliLoginExchangeResult> {
    return checkLoginExchange(
      'POST /v1/cli/logins/:login_id/exchange',
      (
        await this.request<unknown>('POST', `/v1/cli/logins/${encodeURIComponent(loginId)}/exchange`, {
          body,
          auth: false,
          retries: 0,
        })
      ).body,
    );
  }

  /** `POST /auth/code` (anonymous) */
  async requestEmailCode(body: { email: string; type: 'api_key' | 'jwt' }): Promise<{ id: string }> {
    return checkEmailCodeStart(
      'POST /auth/code',
      (await this.request<unknown>('POST', '/auth/code', { body, auth: false })).body,
    );
  }

  /** `POST /auth/code/:id/verifications` (anonymous) */
  async verifyEmailCode(
    id: string,
    code: string,
    /** this machine's name, for the server's new-login notice */
    hostname?: string,
  ): Promise<{ secret?: string; key_id?: string; token?: string; expires_at?: string }> {
    return checkEmailVerification(
      'POST /auth/code/:id/verifications',
      (
        await this.request<unknown>('POST', `/auth/code/${encodeURIComponent(id)}/verifications`, {
          body: hostname ? { code, hostname } : { code },
          auth: false,
          retries: 0,
        })
      ).body,
    );
  }

  /** `GET /healthz` */
  async health(): Promise<{ status: string }> {
    return (await this.request<{ status: string }>('GET', '/healthz', { auth: false })).body;
  }
}

function headerValue(v: string | string[] | undefined): string | null {
  if (v === undefined) return null;
  return Array.isArray(v) ? (v[0] ?? null) : v;
}

function toApiError(
  status: number,
  text: string,
  requestId: string | null,
  retryAfterHeader: string | null,
): ApiError {
  const retryAfter =
    retryAfterHeader !== null && /^\d+$/.test(retryAfterHeader) ? Number(retryAfterHeader) : undefined;
  try {
    const body = JSON.parse(text) as {
      error?: { code?: unknown; message?: unknown; request_id?: unknown; details?: unknown };
    };
    // only what has the shape of API.md's error is taken, bounded: the code and the request id are
    // printed in brackets and scripts match on them; the message is one line for people
    const code = safeToken(body?.error?.code);
    if (code) {
      const message = body.error?.message;
      return new ApiError(
        typeof message === 'string' && message ? clampText(message, MAX_ERROR_MESSAGE) : `HTTP ${status}`,
        {
          code,
          status,
          requestId: safeToken(body.error?.request_id) ?? requestId,
          details: boundedDetails(body.error?.details),
          retryAfter,
        },
      );
    }
  } catch {}
  return new ApiError(`The server answered HTTP ${status}.`, {
    code: 'UNEXPECTED_RESPONSE',
    status,
    requestId,
    retryAfter,
  });
}

/** An error code or request id a server sent, when it looks like one (else undefined). */
function safeToken(value: unknown): string | undefined {
  return typeof value === 'string' && /^[A-Za-z0-9_.:-]{1,128}$/.test(value) ? value : undefined;
}

/** Longest error message taken from a server, "…" included: 500 characters of it (API.md's are one sentence). */
const MAX_ERROR_MESSAGE = 501;
/** Largest `details` of an error taken from a server, as JSON (a validation error's list of fields). */
const MAX_ERROR_DETAILS = 8 * 1024;

function boundedDetails(details: unknown): unknown {
  if (details === undefined || details === null) return undefined;
  return JSON.stringify(details).length <= MAX_ERROR_DETAILS ? details : undefined;
}

function describeNetworkError(err: unknown): string {
  const e = err as { code?: string; message?: string; name?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  if (e.name === 'TimeoutError' || code?.includes('TIMEOUT')) return 'timed out';
  return e.message ?? String(err);
}

/** Answers larger than this are refused: no Breeze response comes near it (a page of 200 keys is ~80 KiB). */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
/** 1000 pages of 200 keys */
const MAX_PAGES = 1000;
/**
 * The most the answers of one listing may add up to (listAllKeys keeps every key). A real listing
 * meets MAX_PAGES first: a real page is ~80 KiB, and even MAX_PAGES pages of 200-character names in
 * 3-byte characters come to ~230 MiB. Without it, MAX_PAGES answers at the per-answer cap are 4 GiB.
 */
const MAX_LISTING_BYTES = 256 * 1024 * 1024;

function unexpectedResponse(what: string, status?: number, requestId?: string | null): ApiError {
  return new ApiError(`Unexpected response from the server: ${what}.`, {
    code: 'UNEXPECTED_RESPONSE',
    status: status ?? 200,
    requestId,
  });
}

/** What both transports answer: a status, headers and a body to read. */
interface Answer {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: AsyncIterable<unknown> & { destroy(): void };
}

/** One HTTP/1.1 request over a unix socket with node:http (see `ClientOptions.socketPath`). */
function requestOverSocket(
  socketPath: string,
  url: URL,
  method: string,
  headers: Record<string, string>,
  payload: string | undefined,
  signal: AbortSignal,
): Promise<Answer> {
  const { request } = process.getBuiltinModule('node:http') as typeof import('node:http');
  const options: import('node:http').RequestOptions & { servername: string } = {
    socketPath,
    // none (plain HTTP); left out, node:http's agent works one out from the host and compiles its
    // IPv6 regex to do so: milliseconds on every command's first request
    servername: '',
    method,
    path: url.pathname + url.search,
    headers: { ...headers, host: url.host, connection: 'close' },
    signal,
  };
  return new Promise((resolve, reject) => {
    const req = request(options, (res) =>
      resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: res }),
    );
    req.on('error', (err) => reject(signal.aborted ? (signal.reason ?? err) : err));
    req.end(payload);
  });
}

/** Reads a response body as UTF-8 (and its size), giving up (and closing the connection) past `limit` bytes. */
async function readCapped(
  body: Answer['body'],
  limit: number,
  status: number,
  requestId: string | null,
): Promise<{ text: string; bytes: number }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.destroy();
      throw unexpectedResponse(`the answer is larger than ${limit / 1048576} MiB`, status, requestId);
    }
    chunks.push(chunk as Buffer);
  }
  return { text: Buffer.concat(chunks).toString('utf8'), bytes: size };
}
