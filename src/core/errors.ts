/** Error codes of API.md, with their HTTP status and category. Shared by server and client. */
export const ERROR_CODES = {
  AUTH_REQUIRED: { status: 401, category: 'AUTH' },
  FORBIDDEN: { status: 403, category: 'AUTH' },
  NOT_FOUND: { status: 404, category: 'REQUEST' },
  VALIDATION_FAILED: { status: 400, category: 'REQUEST' },
  PAYLOAD_TOO_LARGE: { status: 413, category: 'REQUEST' },
  CONFLICT: { status: 409, category: 'REQUEST' },
  RATE_LIMITED: { status: 429, category: 'RATE_LIMIT' },
  AUTHORIZATION_PENDING: { status: 400, category: 'LOGIN' },
  SLOW_DOWN: { status: 400, category: 'LOGIN' },
  ACCESS_DENIED: { status: 400, category: 'LOGIN' },
  EXPIRED_TOKEN: { status: 400, category: 'LOGIN' },
  INVALID_GRANT: { status: 400, category: 'LOGIN' },
  INTERNAL: { status: 500, category: 'SERVER' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorBody {
  error: {
    code: ErrorCode | string;
    message: string;
    statusCode: number;
    category: string;
    request_id: string;
    details?: unknown;
  };
}

/** An error the server answers with; its message must never contain a secret. */
export class HttpError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly details?: unknown;
  readonly headers?: Record<string, string>;
  constructor(
    code: ErrorCode,
    message: string,
    opts: { details?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = 'HttpError';
    this.code = code;
    this.statusCode = ERROR_CODES[code].status;
    this.details = opts.details;
    this.headers = opts.headers;
  }
}
