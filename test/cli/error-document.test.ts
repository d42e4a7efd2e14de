import { expect, it } from 'vitest';
import { errorDocument, UserError } from '../../src/cli/errors.js';
import { ApiError, NetworkError } from '../../src/client/errors.js';

it('--json error code: a UserError caused by a network failure says NETWORK_ERROR, not FAILED', () => {
  const cause = new NetworkError(
    'Cannot reach http://127.0.0.1:9: connection refused',
    'http://127.0.0.1:9/v1/x',
  );
  const err = new UserError(`Could not delete the key on the server: ${cause.message}`, { cause });
  expect(errorDocument(err).error).toMatchObject({ code: 'NETWORK_ERROR', exit_code: 1 });
});

it('--json error code: a server error cause keeps its code; no cause is FAILED', () => {
  const cause = new ApiError('Nope.', { code: 'CONFLICT', status: 409, requestId: 'req_1' });
  expect(errorDocument(new UserError('Could not.', { cause })).error).toMatchObject({
    code: 'CONFLICT',
    status: 409,
  });
  expect(errorDocument(new UserError('Could not.')).error.code).toBe('FAILED');
});
