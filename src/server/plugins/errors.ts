import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES, type ErrorBody, type ErrorCode, HttpError } from '../../core/errors.js';
import { newRequestId } from '../../core/ids.js';

export function errorBody(code: ErrorCode, message: string, requestId: string, details?: unknown): ErrorBody {
  const { status, category } = ERROR_CODES[code];
  return {
    error: {
      code,
      message,
      statusCode: status,
      category,
      request_id: requestId,
      ...(details ? { details } : {}),
    },
  };
}

function sendError(reply: FastifyReply, code: ErrorCode, message: string, details?: unknown): FastifyReply {
  // RFC 9110 §15.5.2: a 401 names how to authenticate (a Bearer challenge: no browser prompt)
  if (code === 'AUTH_REQUIRED') reply.header('www-authenticate', 'Bearer realm="breeze"');
  return reply
    .header('x-request-id', reply.request.id)
    .code(ERROR_CODES[code].status)
    .type('application/json; charset=utf-8')
    .send(errorBody(code, message, reply.request.id, details));
}

const STATUS_TO_CODE: Record<number, ErrorCode> = {
  401: 'AUTH_REQUIRED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  429: 'RATE_LIMITED',
};

/** Turns any error into the error shape of API.md. Bad input is always a 4xx; a 5xx says nothing. */
export function handleError(err: FastifyError | HttpError, request: FastifyRequest, reply: FastifyReply) {
  if (err instanceof HttpError) {
    if (err.headers) reply.headers(err.headers);
    return sendError(reply, err.code, err.message, err.details);
  }
  const fe = err as FastifyError;
  if (fe.validation) {
    const details = fe.validation.map((v) => ({
      field: `${fe.validationContext ?? 'body'}${v.instancePath ? v.instancePath.replaceAll('/', '.') : ''}`,
      message: v.message ?? 'is invalid',
    }));
    return sendError(
      reply,
      'VALIDATION_FAILED',
      `Invalid request ${fe.validationContext ?? 'body'}.`,
      details,
    );
  }
  const status = fe.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    const code = STATUS_TO_CODE[status] ?? 'VALIDATION_FAILED';
    const message =
      code === 'PAYLOAD_TOO_LARGE'
        ? 'Request body is larger than 64 KiB.'
        : code === 'VALIDATION_FAILED'
          ? describeClientError(fe)
          : fe.message;
    return sendError(reply, code, message);
  }
  request.log.error({ err }, 'unhandled error');
  return sendError(reply, 'INTERNAL', 'Internal server error.');
}

/** The answer to a body of a type no route reads (Fastify's own check, and the '*' parser of app.ts). */
export const UNSUPPORTED_TYPE = 'Unsupported Content-Type: send application/json.';

function describeClientError(fe: FastifyError): string {
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return UNSUPPORTED_TYPE;
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'Body is empty but Content-Type is application/json.';
    case 'FST_ERR_BAD_URL':
      // Fastify's message repeats the whole path, which may carry anything the caller pasted
      return 'Malformed URL: invalid percent-encoding.';
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return 'Malformed JSON body.';
    default:
      // Fastify's own 4xx messages describe the input, never a secret (bodies are not echoed).
      return fe.code?.startsWith('FST_') ? fe.message : 'Invalid request.';
  }
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler(handleError);
  app.setNotFoundHandler((_req, reply) => sendError(reply, 'NOT_FOUND', 'No such route.'));
}

/**
 * Answers a request Node's HTTP parser refused before Fastify saw it (invalid bytes in the request
 * line, broken chunked framing, a bad Content-Length, oversized headers) with a 400 in the
 * documented shape, then closes the connection: its framing can no longer be trusted.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const id = newRequestId();
  const message =
    err.code === 'HPE_HEADER_OVERFLOW' ? 'Request headers are too large.' : 'Malformed HTTP request.';
  const body = JSON.stringify(errorBody('VALIDATION_FAILED', message, id));
  socket.end(
    'HTTP/1.1 400 Bad Request\r\n' +
      'content-type: application/json; charset=utf-8\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      `x-request-id: ${id}\r\n` +
      'connection: close\r\n\r\n' +
      body,
  );
}
