import { hostname } from 'node:os';
import { join } from 'node:path';
import type { BreezeClient } from '../../client/client.js';
import { ApiError } from '../../client/errors.js';
import { SCOPES } from '../../core/types.js';
import {
  ensurePrivateDir,
  readJsonFile,
  withDirLock,
  writeFileAtomicSync,
} from '../../credentials/atomic-file.js';
import type { CliContext } from '../context.js';
import { NotAuthenticatedError, UsageError, UserError } from '../errors.js';
import type { LoginResult } from '../session.js';
import type { LoginOptions } from './options.js';

/**
 * `<config dir>/pending-email-logins.json`: the code requested by a non-interactive
 * `breeze login --email <addr>`, per profile and server, so that a later
 * `breeze login --email <addr> --code <code>` can finish it. It holds the code's id only, which is
 * useless without the mailed code (not a secret), and is dropped once used or expired.
 */
export const PENDING_FILE = 'pending-email-logins.json';
/** The server keeps a code 10 minutes (API.md). */
const CODE_LIFETIME_MS = 10 * 60_000;
const CODE_ALPHABET = /^[0-9A-Z]{8}$/;
const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+$/;
/** Wrong codes the server tolerates before the code dies; interactive runs re-ask until then. */
const MAX_TRIES = 5;

export interface PendingEmailLogin {
  id: string;
  email: string;
  requested_at: string;
  expires_at: string;
}

type PendingFile = Record<string, PendingEmailLogin>;

function pendingPath(ctx: CliContext): string {
  return join(ctx.configDir, PENDING_FILE);
}

function readPending(ctx: CliContext): PendingFile {
  try {
    const data = readJsonFile<PendingFile>(pendingPath(ctx));
    return data && typeof data === 'object' && !Array.isArray(data) ? data : {};
  } catch {
    return {}; // a corrupt file only costs a new code
  }
}

/** Applies `change` to the pending file under the config dir's lock, dropping expired entries. */
async function updatePending(ctx: CliContext, change: (data: PendingFile) => void): Promise<void> {
  ensurePrivateDir(ctx.configDir);
  await withDirLock(ctx.configDir, () => {
    const data = readPending(ctx);
    const now = ctx.clock().toISOString();
    for (const [k, v] of Object.entries(data)) if (!(v?.expires_at > now)) delete data[k];
    change(data);
    writeFileAtomicSync(pendingPath(ctx), `${JSON.stringify(data, null, 2)}\n`);
  });
}

/** The pending code for this profile and server (and `email`, when given), if still alive. */
export function findPending(ctx: CliContext, email?: string): PendingEmailLogin | undefined {
  const entry = readPending(ctx)[ctx.account()];
  if (!entry || !(entry.expires_at > ctx.clock().toISOString())) return undefined;
  if (email && entry.email.toLowerCase() !== email.toLowerCase()) return undefined;
  return entry;
}

/** Users paste codes with spaces or dashes, or in lower case. */
export function normaliseCode(input: string): string {
  return input.replace(/[\s-]/g, '').toUpperCase();
}

function checkEmail(value: string): string {
  const email = value.trim();
  if (!EMAIL_SHAPE.test(email) || email.length > 254) {
    throw new UsageError(`"${value}" is not an email address.`, {
      hint: 'Pass --email <addr>, e.g. --email me@example.com.',
    });
  }
  return email;
}

function loginCommand(ctx: CliContext, email: string, code?: string): string {
  const parts = ['breeze login'];
  if (ctx.profile !== 'default') parts.push(`--profile ${ctx.profile}`);
  parts.push(`--email ${email}`);
  if (code) parts.push(`--code ${code}`);
  return parts.join(' ');
}

/**
 * `breeze login --email [addr] [--code <code>]` (API.md "Email-code flow", `type: api_key`).
 *
 * - Interactive: asks for the address when not given, has a code mailed, asks for it (again after
 *   a typo, until the server's 5 tries are used up) and returns the minted key.
 * - Non-interactive without `--code`: has a code mailed, remembers the code's id in the config dir
 *   and fails with exit 2 naming `--code`; `breeze login --email <addr> --code <code>` then
 *   finishes within the code's 10 minutes (`--email` may be left out then: the pending address is
 *   used).
 * - `--code` given up front with no pending request: exit 2 (the code must be requested first).
 *
 * `--name` and `--scopes` are applied to the new key afterwards (the server mints it with all
 * scopes and a dated name); nothing is saved here: `runLogin` saves the result.
 */
export async function runEmailLogin(opts: LoginOptions, ctx: CliContext): Promise<LoginResult> {
  const given = typeof opts.email === 'string' && opts.email.trim() ? checkEmail(opts.email) : undefined;

  if (opts.code !== undefined) {
    const code = normaliseCode(opts.code);
    if (!CODE_ALPHABET.test(code)) {
      throw new UsageError('A code is 8 letters and digits, as in the mail ("Your Breeze code: 09HD74KM").');
    }
    const pending = findPending(ctx, given);
    if (!pending) {
      const email = given ?? '<addr>';
      throw new UsageError(
        given
          ? `No code was requested for ${given} from here in the last 10 minutes.`
          : 'No email code was requested from here in the last 10 minutes.',
        { hint: `Run "${loginCommand(ctx, email)}" to get a code by mail, then add --code <code>.` },
      );
    }
    const client = await ctx.client();
    return finish(client, await verify(ctx, client, pending, code), opts);
  }

  const email =
    given ??
    checkEmail(
      await ctx.prompts.input('Email address', {
        flag: '--email <addr>',
        validate: (v) => EMAIL_SHAPE.test(v.trim()) || 'Enter an email address, like me@example.com',
      }),
    );
  const client = await ctx.client();
  const requestedAt = ctx.clock();
  const { id } = await client.requestEmailCode({ email, type: 'api_key' });
  const pending: PendingEmailLogin = {
    id,
    email,
    requested_at: requestedAt.toISOString(),
    expires_at: new Date(requestedAt.getTime() + CODE_LIFETIME_MS).toISOString(),
  };
  ctx.out.info(
    `A code is on its way to ${email} (subject "Your Breeze code: ..."). It works once, for 10 minutes.`,
  );
  // the embedded server writes its mail in the background: show it before this run may end
  await ctx.embeddedMail(email);

  if (!ctx.prompts.interactive) {
    await updatePending(ctx, (data) => {
      data[ctx.account()] = pending;
    });
    throw new UsageError('The code from the mail is needed to finish, and this run cannot ask for it.', {
      hint: `Re-run with --code: ${loginCommand(ctx, email, '<code>')}`,
    });
  }

  for (let attempt = 1; ; attempt++) {
    const typed = await ctx.prompts.input('Code from the mail', {
      flag: '--code <code>',
      validate: (v) => CODE_ALPHABET.test(normaliseCode(v)) || 'The code is 8 letters and digits',
    });
    try {
      const minted = await verify(ctx, client, pending, normaliseCode(typed), attempt < MAX_TRIES);
      return finish(client, minted, opts);
    } catch (err) {
      if (err instanceof WrongCode) {
        ctx.out.warn(
          `That code is not right (${MAX_TRIES - attempt} ${MAX_TRIES - attempt === 1 ? 'try' : 'tries'} left).`,
        );
        continue;
      }
      throw err;
    }
  }
}

class WrongCode extends Error {}

/** What a code was traded for: the new key, and its id when the server said it (API.md: it does). */
interface MintedByCode {
  apiKey: string;
  keyId?: string;
}

/** Trades the code for a key; forgets the pending request once it is used up or dead. */
async function verify(
  ctx: CliContext,
  client: BreezeClient,
  pending: PendingEmailLogin,
  code: string,
  retryable = false,
): Promise<MintedByCode> {
  try {
    // the server's new-login notice names this machine (control characters would be refused)
    const host = hostname()
      .replace(/[^\x20-\x7e]/g, '')
      .slice(0, 100)
      .trim();
    const res = await client.verifyEmailCode(pending.id, code, host || undefined);
    if (!res.secret) throw new UserError('The server answered without a key.');
    await dropPending(ctx, pending.id);
    return { apiKey: res.secret, keyId: res.key_id };
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    if (err.status === 401) {
      if (retryable) throw new WrongCode();
      throw new NotAuthenticatedError('Wrong code. Nothing was saved.', {
        hint: `Check the code in the latest mail to ${pending.email}; after 5 wrong tries, ask for a new one with "${loginCommand(ctx, pending.email)}".`,
      });
    }
    if (err.status === 404) {
      await dropPending(ctx, pending.id);
      throw new NotAuthenticatedError(
        'This code has expired, was already used, or had too many wrong tries. Nothing was saved.',
        {
          hint: `Ask for a new one with "${loginCommand(ctx, pending.email)}".`,
        },
      );
    }
    throw err;
  }
}

async function dropPending(ctx: CliContext, id: string): Promise<void> {
  if (readPending(ctx)[ctx.account()]?.id !== id) return;
  await updatePending(ctx, (data) => {
    if (data[ctx.account()]?.id === id) delete data[ctx.account()];
  });
}

/**
 * Reads back the new key and its user, applying `--name` / `--scopes`. If that fails, the new
 * full-scope key is stored nowhere yet: it is deleted on the server (with itself) rather than left
 * alive and unknown.
 */
async function finish(
  anonymous: BreezeClient,
  minted: MintedByCode,
  opts: LoginOptions,
): Promise<LoginResult> {
  const { apiKey } = minted;
  const client = anonymous.withKey(apiKey);
  let keyId = minted.keyId;
  try {
    const me = await client.me();
    if (me.auth.type !== 'api_key' || !me.auth.key_id)
      throw new UserError('The server did not accept the new key.');
    keyId = me.auth.key_id;
    const patch: { name?: string; scopes?: LoginOptions['scopes'] } = {};
    if (opts.name) patch.name = opts.name;
    if (opts.scopes && opts.scopes.length < SCOPES.length) patch.scopes = opts.scopes;
    const key = Object.keys(patch).length ? await client.updateKey(keyId, patch) : await client.getKey(keyId);
    return { apiKey, key, user: me.user, minted: true };
  } catch (err) {
    if (keyId !== undefined) await client.deleteKey(keyId).catch(() => {});
    throw err;
  }
}
