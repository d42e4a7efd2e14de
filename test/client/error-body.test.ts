/**
 * An error answer is untrusted like any other: only what has the shape of API.md's error body is
 * taken from it, bounded. A code or request id that is not a short token (an object, a megabyte, a
 * line of escapes) is not passed on to the `[CODE] (request …)` line or the --json error document; a
 * message is a string of at most 500 characters; `details` larger than 8 KiB are dropped.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeError, errorDocument } from '../../src/cli/errors.js';
import { ApiError, BreezeClient } from '../../src/client/client.js';

let server: Server;
let client: BreezeClient;
let answer: { status: number; body: unknown; headers?: Record<string, string> } = { status: 500, body: {} };

beforeAll(async () => {
  server = createServer((_req, res) => {
    res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
    res.end(JSON.stringify(answer.body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  client = new BreezeClient({ baseUrl: url, proxy: false, retries: 0 });
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

async function failure(status: number, error: unknown, headers?: Record<string, string>): Promise<ApiError> {
  answer = { status, body: { error }, headers };
  const err = await client.me().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ApiError);
  return err as ApiError;
}

it('a well-formed error body is taken as it is', async () => {
  const err = await failure(409, {
    code: 'CONFLICT',
    message: 'The key is disabled.',
    request_id: 'req_01JABC',
    details: [{ field: 'name', message: 'too long' }],
  });
  expect(err.code).toBe('CONFLICT');
  expect(err.message).toBe('The key is disabled.');
  expect(err.requestId).toBe('req_01JABC');
  expect(err.details).toEqual([{ field: 'name', message: 'too long' }]);
});

it('a code that is not a token makes the answer an unexpected one, not "[object Object]"', async () => {
  for (const code of [{ x: 1 }, 42, 'C'.repeat(100_000), 'AUTH\n✓ Logged in']) {
    const err = await failure(409, { code, message: 'no' });
    expect(err.code).toBe('UNEXPECTED_RESPONSE');
    expect(err.message).toBe('The server answered HTTP 409.');
    expect(describeError(err, false)).not.toContain('[object Object]');
  }
});

it('a message that is not a string is not printed; a long one is cut to 500 characters', async () => {
  const odd = await failure(403, { code: 'FORBIDDEN', message: { a: 1 } });
  expect(odd.message).toBe('HTTP 403');
  const long = await failure(403, { code: 'FORBIDDEN', message: 'M'.repeat(1 << 20) });
  expect(long.message).toHaveLength(501);
  expect(long.message.endsWith('…')).toBe(true);
  expect(describeError(long, false)!.length).toBeLessThan(600);
  expect(JSON.stringify(errorDocument(long)).length).toBeLessThan(700);
});

it('a request id that is not a token, in the body or the header, is left out', async () => {
  for (const rid of [{ a: 1 }, 'r'.repeat(100_000), 'req_1\u001b]0;x\u0007']) {
    const err = await failure(409, { code: 'CONFLICT', message: 'no', request_id: rid });
    expect(err.requestId).toBeNull();
    expect(errorDocument(err).error.request_id).toBeNull();
  }
  const header = await failure(
    409,
    { code: 'CONFLICT', message: 'no' },
    { 'x-request-id': 'r'.repeat(5000) },
  );
  expect(header.requestId).toBeNull();
  const fromHeader = await failure(409, { code: 'CONFLICT', message: 'no' }, { 'x-request-id': 'req_2' });
  expect(fromHeader.requestId).toBe('req_2');
});

it('details larger than 8 KiB are dropped from the error (and so from --json)', async () => {
  const err = await failure(400, { code: 'VALIDATION_FAILED', message: 'bad', details: 'x'.repeat(1 << 20) });
  expect(err.details).toBeUndefined();
  expect(JSON.stringify(errorDocument(err)).length).toBeLessThan(500);
});
