import { BreezeVerifyError } from './errors.js';

/** Answers larger than this are not Breeze's: refused without reading them whole. */
export const MAX_ANSWER_BYTES = 64 * 1024;

/** The body of `res` as text, refusing (BAD_RESPONSE) anything over `limit` bytes. */
export async function readLimited(res: Response, limit = MAX_ANSWER_BYTES): Promise<string> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > limit) {
    await res.body?.cancel().catch(() => {});
    throw new BreezeVerifyError('BAD_RESPONSE', `The Breeze server sent an answer of ${declared} bytes.`, {
      status: res.status,
    });
  }
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw new BreezeVerifyError('BAD_RESPONSE', `The Breeze server sent an answer over ${limit} bytes.`, {
        status: res.status,
      });
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/** Maps a failed `fetch` (network, abort, timeout) to a BreezeVerifyError that names the server. */
export function networkError(err: unknown, server: string, timeoutMs: number): BreezeVerifyError {
  const name = (err as { name?: string } | null)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return new BreezeVerifyError(
      'TIMEOUT',
      `The Breeze server at ${server} did not answer within ${timeoutMs} ms.`,
      {
        cause: err,
      },
    );
  }
  return new BreezeVerifyError('UNREACHABLE', `The Breeze server at ${server} cannot be reached.`, {
    cause: err,
  });
}

/**
 * A request id or error code another party sent, when it is safe to repeat (in an error, a refusal
 * body, a log): letters, digits and `_.:-`, 80 characters at most; otherwise undefined.
 */
export function safeToken(value: unknown): string | undefined {
  return typeof value === 'string' && /^[A-Za-z0-9_.:-]{1,80}$/.test(value) ? value : undefined;
}

/** The error code and request id of a Breeze error body, when it is one (never more than that). */
export function describeErrorBody(text: string): { code?: string; requestId?: string } {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; request_id?: unknown } };
    const code = typeof body?.error?.code === 'string' ? body.error.code : undefined;
    const requestId = typeof body?.error?.request_id === 'string' ? body.error.request_id : undefined;
    const out: { code?: string; requestId?: string } = {};
    const c = safeToken(code);
    const r = safeToken(requestId);
    if (c) out.code = c;
    if (r) out.requestId = r;
    return out;
  } catch {
    return {};
  }
}
