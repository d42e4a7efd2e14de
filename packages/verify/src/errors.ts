/** Why a verification could not be answered. None of these ever means "valid". */
export type BreezeVerifyErrorCode =
  /** the Breeze server could not be reached (connection refused, DNS, reset) */
  | 'UNREACHABLE'
  /** no answer within `timeoutMs` */
  | 'TIMEOUT'
  /** the server answered 5xx */
  | 'SERVER_ERROR'
  /** the server answered something that is not the documented response */
  | 'BAD_RESPONSE'
  /** the verifier's own API key was refused (401): wrong, disabled or deleted */
  | 'UNAUTHORIZED'
  /** the verifier's own API key lacks the `verify` scope (403) */
  | 'FORBIDDEN'
  /** the verifier's own API key is over its rate limit (429) */
  | 'THROTTLED'
  /** the verifier was closed */
  | 'CLOSED';

/**
 * Thrown when a key or token cannot be checked. Guards turn it into a `503`: a service must never
 * let a request through because Breeze could not be asked. The message never contains a key.
 */
export class BreezeVerifyError extends Error {
  readonly code: BreezeVerifyErrorCode;
  /** HTTP status of the server's answer, when there was one */
  readonly status?: number;
  /** the server's `x-request-id`, when there was one (quote it to the server's operator) */
  readonly requestId?: string;

  constructor(
    code: BreezeVerifyErrorCode,
    message: string,
    opts: { status?: number; requestId?: string; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'BreezeVerifyError';
    this.code = code;
    if (opts.status !== undefined) this.status = opts.status;
    if (opts.requestId !== undefined) this.requestId = opts.requestId;
  }
}

/** Why a webhook delivery was refused by `verifyWebhook`. */
export type BreezeWebhookErrorCode =
  /** no `breeze-signature` header, or not `t=…,kid=…,sig=…` */
  | 'MALFORMED_SIGNATURE'
  /** `t` is older than the tolerance, or further in the future than it */
  | 'TIMESTAMP_OUT_OF_TOLERANCE'
  /** no key with that `kid` in the JWKS, even after refetching it */
  | 'UNKNOWN_KID'
  /** the Ed25519 signature does not match the body */
  | 'BAD_SIGNATURE'
  /** the signed body is not a Breeze event (`{"id","type","created_at","data"}`) */
  | 'BAD_BODY'
  /** the JWKS could not be fetched */
  | 'JWKS_UNAVAILABLE';

/** Thrown by `verifyWebhook`: the delivery must be refused (answer it with a 4xx). */
export class BreezeWebhookError extends Error {
  readonly code: BreezeWebhookErrorCode;
  constructor(code: BreezeWebhookErrorCode, message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'BreezeWebhookError';
    this.code = code;
  }
}
