/**
 * Two-step login for agents and scripts (issue 15): `breeze login --start --json` creates a device
 * login (API.md "CLI login", no redirect) and returns at once; the PKCE verifier waits in
 * `<config dir>/pending-logins/<login_id>.json` (0600 in a 0700 directory, written atomically) until
 * `breeze login --complete [<login_id>] [--wait]` exchanges it. One file per login, so several
 * pending logins coexist and concurrent runs never rewrite each other's. A file is removed once the
 * login is completed, refused, or past its expiry (expired ones are swept on every start/complete).
 * The verifier is never printed, logged or sent anywhere but to the exchange.
 */
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ApiError, NetworkError } from '../../client/errors.js';
import { isId } from '../../client/validate.js';
import type { CliLoginStart } from '../../core/types.js';
import { ensurePrivateDir, writeFileAtomicSync } from '../../credentials/atomic-file.js';
import type { StoragePreference } from '../../credentials/types.js';
import type { CliContext } from '../context.js';
import { UsageError, UserError } from '../errors.js';
import type { LoginResult } from '../session.js';
import { cliVersion } from '../version.js';
import type { LoginOptions } from './options.js';
import { createPkce } from './pkce.js';
import { boundLoginStart, clampInterval, delay } from './server-values.js';

export const PENDING_DIR = 'pending-logins';

/** What `--start --json` prints (CLI.md). */
export interface StartedLogin {
  login_id: string;
  user_code: string;
  verification_uri_complete: string;
  /** RFC 3339 */
  expires_at: string;
}

interface PendingLogin extends StartedLogin {
  /** the PKCE verifier: the secret that turns the approval into a key */
  code_verifier: string;
  profile: string;
  server: string;
  interval: number;
  storage?: 'keychain' | 'file';
}

const VERIFIER = /^[A-Za-z0-9_-]{43,128}$/;

function pendingDir(ctx: CliContext): string {
  return join(ctx.configDir, PENDING_DIR);
}

function readPending(ctx: CliContext, loginId: string): PendingLogin | undefined {
  if (!isId(loginId)) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(join(pendingDir(ctx), `${loginId}.json`), 'utf8'));
  } catch {
    return undefined;
  }
  const p = data as Partial<PendingLogin> | null;
  if (
    !p ||
    typeof p !== 'object' ||
    p.login_id !== loginId ||
    typeof p.code_verifier !== 'string' ||
    !VERIFIER.test(p.code_verifier) ||
    typeof p.profile !== 'string' ||
    typeof p.server !== 'string' ||
    typeof p.expires_at !== 'string' ||
    typeof p.user_code !== 'string' ||
    typeof p.verification_uri_complete !== 'string'
  ) {
    return undefined;
  }
  return p as PendingLogin;
}

function removePending(ctx: CliContext, loginId: string): void {
  if (isId(loginId)) rmSync(join(pendingDir(ctx), `${loginId}.json`), { force: true });
}

function expired(p: PendingLogin, now: Date): boolean {
  return !(Date.parse(p.expires_at) > now.getTime());
}

/** Every live pending login (any profile); expired and unreadable files are removed. */
function listPending(ctx: CliContext): PendingLogin[] {
  let names: string[];
  try {
    names = readdirSync(pendingDir(ctx));
  } catch {
    return [];
  }
  const now = ctx.clock();
  const live: PendingLogin[] = [];
  for (const name of names) {
    const id = name.endsWith('.json') ? name.slice(0, -5) : '';
    const p = id ? readPending(ctx, id) : undefined;
    if (p && !expired(p, now)) {
      live.push(p);
      continue;
    }
    // a temp file of a write in progress is young: leave those alone
    try {
      if (p || Date.now() - statSync(join(pendingDir(ctx), name)).mtimeMs > 60_000)
        rmSync(join(pendingDir(ctx), name), { force: true });
    } catch {
      // gone already
    }
  }
  return live.sort((a, b) => a.expires_at.localeCompare(b.expires_at));
}

/** `breeze login --start`: creates the login, keeps the verifier, returns what the agent shows a person. */
export async function startTwoStepLogin(
  opts: LoginOptions,
  ctx: CliContext,
  storage: StoragePreference,
): Promise<StartedLogin> {
  listPending(ctx); // sweep expired ones
  const pkce = createPkce();
  const client = await ctx.client();
  const raw = await client.startCliLogin({
    code_challenge: pkce.challenge,
    code_challenge_method: pkce.method,
    client_name: `breeze/${cliVersion()}`,
    hostname: hostname().slice(0, 100) || 'unknown',
    ...(opts.name ? { key_name: opts.name } : {}),
    ...(opts.scopes ? { scopes: opts.scopes } : {}),
  });
  const start: CliLoginStart = boundLoginStart(raw, client.baseUrl, (m) => ctx.out.warn(m));
  const expiresAt = new Date(ctx.clock().getTime() + start.expires_in * 1000).toISOString();
  const pending: PendingLogin = {
    login_id: start.login_id,
    user_code: start.user_code,
    verification_uri_complete: start.verification_uri_complete,
    expires_at: expiresAt,
    code_verifier: pkce.verifier,
    profile: ctx.profile,
    server: ctx.server(),
    interval: start.interval,
    ...(storage !== 'auto' ? { storage } : {}),
  };
  ensurePrivateDir(ctx.configDir);
  ensurePrivateDir(pendingDir(ctx));
  writeFileAtomicSync(
    join(pendingDir(ctx), `${start.login_id}.json`),
    `${JSON.stringify(pending, null, 2)}\n`,
    0o600,
  );
  return {
    login_id: start.login_id,
    user_code: start.user_code,
    verification_uri_complete: start.verification_uri_complete,
    expires_at: expiresAt,
  };
}

function completeCommand(ctx: CliContext, loginId?: string): string {
  const parts = ['breeze'];
  if (ctx.profile !== 'default') parts.push(`--profile ${ctx.profile}`);
  parts.push('login --complete');
  if (loginId) parts.push(loginId);
  return parts.join(' ');
}

/** The pending login `--complete` acts on: the one named, else the only one of this profile and server. */
function choosePending(ctx: CliContext, loginId: string | undefined): PendingLogin {
  const server = ctx.server();
  if (loginId !== undefined) {
    if (!isId(loginId)) throw new UsageError(`"${loginId}" is not a login id.`);
    const p = readPending(ctx, loginId);
    if (!p || expired(p, ctx.clock())) {
      if (p) removePending(ctx, loginId);
      throw new UserError(
        `No pending login ${loginId} here (it expired, was completed, or was started elsewhere).`,
        {
          hint: 'Start a new one with "breeze login --start".',
        },
      );
    }
    if (p.profile !== ctx.profile || p.server !== server) {
      throw new UsageError(
        `Login ${loginId} was started for profile "${p.profile}" on ${p.server}, not "${ctx.profile}" on ${server}.`,
        { hint: `Run: breeze --profile ${p.profile} --server ${p.server} login --complete ${loginId}` },
      );
    }
    return p;
  }
  const mine = listPending(ctx).filter((p) => p.profile === ctx.profile && p.server === server);
  if (mine.length === 1) return mine[0]!;
  if (mine.length === 0) {
    throw new UsageError(`No pending login for profile "${ctx.profile}".`, {
      hint: 'Start one with "breeze login --start --json".',
    });
  }
  throw new UsageError(`${mine.length} logins are pending for profile "${ctx.profile}": name one.`, {
    hint: mine
      .map((p) => `${completeCommand(ctx, p.login_id)}   (code ${p.user_code}, expires ${p.expires_at})`)
      .join('\n'),
  });
}

/**
 * `breeze login --complete [<login_id>] [--wait]`: exchanges the verifier. Not yet approved: exit 1
 * saying to approve first or pass `--wait`; with `--wait`, polls at the server's interval until the
 * login is decided or expires. Returns the login result and the storage chosen at `--start`.
 */
export async function completeTwoStepLogin(
  ctx: CliContext,
  opts: { loginId?: string; wait: boolean },
): Promise<{ result: LoginResult; storage?: 'keychain' | 'file' }> {
  const pending = choosePending(ctx, opts.loginId);
  const client = await ctx.client();
  let interval = clampInterval(pending.interval);
  let networkFailures = 0;
  const deadline = Date.parse(pending.expires_at);
  let spinner: Awaited<ReturnType<CliContext['spinner']>> | undefined;
  try {
    for (;;) {
      try {
        const r = await client.exchangeCliLogin(pending.login_id, { code_verifier: pending.code_verifier });
        removePending(ctx, pending.login_id);
        return {
          result: { apiKey: r.api_key, key: r.key, user: r.user, minted: true },
          storage: pending.storage,
        };
      } catch (err) {
        const code = err instanceof ApiError ? err.code : undefined;
        if (code === 'AUTHORIZATION_PENDING' || code === 'SLOW_DOWN') {
          networkFailures = 0;
          if (code === 'SLOW_DOWN') {
            const told = (err as ApiError & { details?: { interval?: unknown } }).details?.interval;
            interval = clampInterval(typeof told === 'number' && told > interval ? told : interval + 1);
          }
          if (!opts.wait) {
            throw new UserError(`Login ${pending.login_id} is not approved yet.`, {
              hint: `Approve it first at ${pending.verification_uri_complete} (code ${pending.user_code}), then run "${completeCommand(ctx, pending.login_id)}" again, or pass --wait to wait for the approval.`,
              code: 'AUTHORIZATION_PENDING',
            });
          }
          spinner ??= await ctx.spinner(
            `Waiting for approval of ${pending.user_code}… (Ctrl-C to stop waiting)`,
          );
        } else if (err instanceof NetworkError && opts.wait && ++networkFailures <= 5) {
          // a blip: keep polling a little longer
        } else if (code === 'ACCESS_DENIED' || code === 'EXPIRED_TOKEN' || code === 'INVALID_GRANT') {
          removePending(ctx, pending.login_id);
          throw new UserError(
            code === 'ACCESS_DENIED'
              ? 'The login was denied. Nothing was saved.'
              : code === 'EXPIRED_TOKEN'
                ? 'The login expired before it was approved. Nothing was saved.'
                : 'The server refused to finish this login. Nothing was saved.',
            { hint: 'Start a new one with "breeze login --start".', cause: err },
          );
        } else {
          throw err;
        }
      }
      const left = deadline - ctx.clock().getTime();
      if (left <= 0) {
        removePending(ctx, pending.login_id);
        throw new UserError('The login expired before it was approved. Nothing was saved.', {
          hint: 'Start a new one with "breeze login --start".',
        });
      }
      await delay(Math.min(interval * 1000, left), ctx.signal);
    }
  } finally {
    spinner?.stop();
  }
}

/**
 * The `--start` / `--complete` branch of `breeze login` (called by commands/login.ts): validates
 * the flag combination, runs the step, saves the key after `--complete`, prints the result.
 */
export async function runTwoStepLogin(
  flags: { start: boolean; complete?: string | true; wait: boolean; other: string[] },
  opts: LoginOptions,
  ctx: CliContext,
): Promise<void> {
  const { saveLogin, savedLoginJson, storagePreference } = await import('../session.js');
  if (flags.start && flags.complete !== undefined)
    throw new UsageError('--start and --complete are two separate steps: pass one of them.');
  if (flags.other.length)
    throw new UsageError(
      `${flags.start ? '--start' : '--complete'} cannot be combined with ${flags.other.join(', ')}.`,
    );
  if (flags.wait && flags.complete === undefined) throw new UsageError('--wait goes with --complete.');
  if (flags.start) {
    const started = await startTwoStepLogin(opts, ctx, storagePreference(ctx, opts.storage));
    if (ctx.json) {
      ctx.out.json(started);
      return;
    }
    ctx.out.info(`To approve this login, open ${started.verification_uri_complete}`);
    ctx.out.info(
      `and check that it shows the code ${started.user_code}. It expires at ${started.expires_at}.`,
    );
    ctx.out.info(`Then run: ${completeCommand(ctx, started.login_id)}   (or add --wait to wait for it)`);
    ctx.out.data(started.login_id);
    return;
  }
  const loginId = typeof flags.complete === 'string' ? flags.complete : undefined;
  const { result, storage } = await completeTwoStepLogin(ctx, { loginId, wait: flags.wait });
  const saved = await saveLogin(ctx, result, { storage: storagePreference(ctx, opts.storage ?? storage) });
  if (ctx.json) {
    ctx.out.json(savedLoginJson(saved));
  }
}
