import { randomString } from '../core/base62.js';
import { safeEqual } from '../core/hash.js';
import { randomToken } from '../core/ids.js';
import type { ServerContext } from './context.js';
import { CodesRepo } from './store/codes.js';

export const EMAIL_CODE_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
export const EMAIL_CODE_LENGTH = 8;
export const EMAIL_CODE_TTL_MS = 10 * 60_000;
export const EMAIL_CODE_MAX_ATTEMPTS = 5;

export type CodePurpose = 'api_key' | 'jwt' | 'browser';

/** Users type codes with spaces, dashes or in lower case; all of those are the same code. */
export function normaliseCode(input: string): string {
  return input.replace(/[\s-]/g, '').toUpperCase();
}

export function codeMailSubject(code: string): string {
  return `Your Breeze code: ${code}`;
}

export type VerifyResult =
  | { ok: true; email: string; purpose: CodePurpose }
  /** unknown id, used, expired or dead after too many tries: 404 */
  | { ok: false; reason: 'gone' }
  /** wrong code, still alive: 401 */
  | { ok: false; reason: 'wrong' };

/**
 * One-time email codes, shared by `POST /auth/code` and the browser sign-in page: 8 characters of
 * `0-9A-Z`, hashed at rest, 10-minute life, single use, dead after 5 wrong tries.
 */
export class EmailCodes {
  private readonly repo: CodesRepo;

  constructor(private readonly ctx: ServerContext) {
    this.repo = new CodesRepo(ctx.store.db);
  }

  /** Creates a code for `email` and, when `send` is true, mails it. Returns the code's id. */
  async issue(email: string, purpose: CodePurpose, send: boolean): Promise<string> {
    const now = this.ctx.clock();
    const id = `code_${randomToken(16)}`;
    const code = randomString(EMAIL_CODE_LENGTH, EMAIL_CODE_ALPHABET);
    await this.repo.insert({
      id,
      email,
      purpose,
      code_hash: this.ctx.hasher(`email-code:${id}:${code}`),
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + EMAIL_CODE_TTL_MS).toISOString(),
      used_at: null,
    });
    if (send) {
      await this.ctx.mailer.send({
        to: email,
        subject: codeMailSubject(code),
        text: [
          `Your Breeze sign-in code is ${code}`,
          '',
          'It works once and expires in 10 minutes.',
          'If you did not ask for it, ignore this mail: nobody can sign in without the code.',
        ].join('\n'),
      });
    }
    return id;
  }

  /**
   * Checks `input` against code `id` and, when it matches, uses the code up. `purposes`, when given,
   * are the purposes this caller redeems: a code issued for another one is 'gone' (and left intact).
   */
  async verify(id: string, input: string, purposes?: readonly CodePurpose[]): Promise<VerifyResult> {
    const row = await this.repo.get(id);
    const now = this.ctx.clock().toISOString();
    if (!row || row.used_at || row.attempts >= EMAIL_CODE_MAX_ATTEMPTS || row.expires_at <= now) {
      return { ok: false, reason: 'gone' };
    }
    if (purposes && !purposes.includes(row.purpose as CodePurpose)) return { ok: false, reason: 'gone' };
    // Count the try before comparing: concurrent guesses then get at most 5 comparisons in all
    // (counting only after a wrong compare let a burst of parallel guesses all be compared).
    if (!(await this.repo.addFailedAttempt(id, EMAIL_CODE_MAX_ATTEMPTS)))
      return { ok: false, reason: 'gone' };
    const given = this.ctx.hasher(`email-code:${id}:${normaliseCode(input)}`);
    if (!safeEqual(given, row.code_hash)) return { ok: false, reason: 'wrong' };
    // our own try is counted, so a right code on the 5th try has attempts == 5 here
    if (!(await this.repo.consume(id, now, EMAIL_CODE_MAX_ATTEMPTS + 1)))
      return { ok: false, reason: 'gone' };
    return { ok: true, email: row.email, purpose: row.purpose as CodePurpose };
  }
}
