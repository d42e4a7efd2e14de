/**
 * Errors raised by BreezeClient. Kept free of imports so the CLI's error mapping can load it without
 * paying for undici.
 */

/** The server answered with an error body (API.md shape) or an unexpected status. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  /** API.md error code, e.g. `AUTH_REQUIRED`; `UNEXPECTED_RESPONSE` when the body was not the error shape */
  readonly code: string;
  /** HTTP status */
  readonly status: number;
  /** `x-request-id` of the failed response, when the server sent one */
  readonly requestId: string | null;
  readonly details?: unknown;
  /** seconds from `Retry-After`, on 429 */
  readonly retryAfter?: number;
  constructor(
    message: string,
    opts: { code: string; status: number; requestId?: string | null; details?: unknown; retryAfter?: number },
  ) {
    super(message);
    this.code = opts.code;
    this.status = opts.status;
    this.requestId = opts.requestId ?? null;
    this.details = opts.details;
    this.retryAfter = opts.retryAfter;
  }
  /** snake_case alias of `requestId`, matching the API's field name */
  get request_id(): string | null {
    return this.requestId;
  }
}

/** The request never got an HTTP answer (connection refused, DNS, timeout, TLS...). */
export class NetworkError extends Error {
  override readonly name = 'NetworkError';
  readonly code = 'NETWORK_ERROR';
  readonly status = 0;
  readonly requestId = null;
  constructor(
    message: string,
    readonly url: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
  get request_id(): null {
    return null;
  }
}
