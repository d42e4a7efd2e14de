import { hostname } from 'node:os';
import { ApiError, NetworkError } from '../../client/errors.js';
import type { CliLoginExchangeResult, CliLoginStart } from '../../core/types.js';
import type { CliContext } from '../context.js';
import { UserError } from '../errors.js';
import type { LoginResult } from '../session.js';
import type { Spinner } from '../ui/spinner.js';
import { cliVersion } from '../version.js';
import { deviceInstructions } from './device-instructions.js';
import { type LoopbackListener, startLoopbackListener } from './loopback.js';
import type { LoginOptions } from './options.js';
import { createPkce, createState } from './pkce.js';
import { boundLoginStart, clampInterval, delay, expiryNote } from './server-values.js';

/**
 * Why no browser can be opened from here (then the login falls back to device mode), or null.
 * SSH sessions and CI runs have no local browser; Linux without a display server neither, unless
 * `BROWSER` names one (xdg-open then runs it: a text browser, or a forwarder such as a cloud IDE's).
 */
export function browserUnavailableReason(
  env: NodeJS.ProcessEnv,
  platform: NodeJS.Platform = process.platform,
): string | null {
  if (env.SSH_CONNECTION || env.SSH_TTY || env.SSH_CLIENT) return 'this is an SSH session';
  if (env.CI && env.CI !== 'false' && env.CI !== '0') return 'this is a CI run';
  if (platform === 'linux' && !env.DISPLAY && !env.WAYLAND_DISPLAY && !env.BROWSER?.trim())
    return 'no graphical display was found';
  return null;
}

/**
 * `BREEZE_BROWSER=none`: do not launch a browser, print the URL and wait on the loopback listener
 * anyway (the URL is opened by hand, or by a test driving a browser, on this machine).
 */
function launchDisabled(env: NodeJS.ProcessEnv): boolean {
  const v = env.BREEZE_BROWSER?.trim().toLowerCase();
  return v === 'none' || v === 'false' || v === '0';
}

function loginFailed(err: unknown): never {
  if (err instanceof ApiError) {
    switch (err.code) {
      case 'ACCESS_DENIED':
        throw new UserError('Login denied in the browser. Nothing was saved.');
      case 'EXPIRED_TOKEN':
        throw new UserError('The login expired before it was approved. Nothing was saved.', {
          hint: 'Run "breeze login" again.',
        });
      case 'INVALID_GRANT':
        throw new UserError('The server refused to finish this login. Nothing was saved.', {
          hint: 'Run "breeze login" again.',
          cause: err,
        });
    }
  }
  throw err;
}

/** Aborts when the login runs out of time, or with the CLI's own signal (Ctrl-C). */
function deadline(ctx: CliContext, seconds: number): { signal: AbortSignal; expired: () => boolean } {
  const timeout = AbortSignal.timeout(seconds * 1000);
  return {
    signal: AbortSignal.any([ctx.signal, timeout]),
    expired: () => timeout.aborted && !ctx.signal.aborted,
  };
}

function toResult(r: CliLoginExchangeResult): LoginResult {
  return { apiKey: r.api_key, key: r.key, user: r.user, minted: true };
}

/**
 * `breeze login` (browser) and `breeze login --no-browser` (device mode), per API.md "CLI login".
 *
 * Browser mode: a PKCE pair and a loopback listener on 127.0.0.1, the approve page opened in the
 * browser; approval redirects to the listener with a one-time code, exchanged together with the
 * verifier. Device mode (`--no-browser`, SSH, CI, no display): the URL and code are printed and the
 * exchange is polled at the server's `interval`. Either way the URL and the user code go to stderr,
 * a spinner runs while waiting, and Ctrl-C (ctx.signal) ends it with nothing saved.
 */
export async function runBrowserLogin(opts: LoginOptions, ctx: CliContext): Promise<LoginResult> {
  const pkce = createPkce();
  const body = {
    code_challenge: pkce.challenge,
    code_challenge_method: pkce.method,
    client_name: `breeze/${cliVersion()}`,
    hostname: hostname().slice(0, 100) || 'unknown',
    ...(opts.name ? { key_name: opts.name } : {}),
    ...(opts.scopes ? { scopes: opts.scopes } : {}),
  };
  const client = await ctx.client();
  // every start goes through the bounds of server-values.ts before anything uses it
  const startLogin = async (b: typeof body & { redirect_uri?: string; state?: string }) =>
    boundLoginStart(await client.startCliLogin(b).catch(loginFailed), client.baseUrl, (m) => ctx.out.warn(m));

  let device = !opts.browser;
  const noLaunch = launchDisabled(ctx.env);
  if (!device && !noLaunch) {
    const reason = browserUnavailableReason(ctx.env);
    if (reason) {
      ctx.out.info(`No browser can be opened here (${reason}): log in with the code below.`);
      device = true;
    }
  }

  if (device) {
    const start = await startLogin(body);
    return pollDevice(ctx, start, pkce.verifier, (id, b) => client.exchangeCliLogin(id, b));
  }

  const state = createState();
  let listener: LoopbackListener;
  try {
    listener = await startLoopbackListener(state);
  } catch (err) {
    // e.g. a sandbox without loopback sockets: the code can still be typed on any device
    ctx.out.info(`Cannot listen on 127.0.0.1 for the browser's answer (${(err as Error).message}).`);
    const start = await startLogin(body);
    return pollDevice(ctx, start, pkce.verifier, (id, b) => client.exchangeCliLogin(id, b));
  }
  ctx.onCleanup(() => listener.close());
  let spinner: Spinner | undefined;
  try {
    const start = await startLogin({ ...body, redirect_uri: listener.redirectUri, state });
    const opened = noLaunch ? false : await ctx.openUrl(start.verification_uri_complete);
    ctx.out.info(
      opened
        ? 'Opened your browser to approve this login. If it did not open, visit:'
        : 'Open this URL in a browser on this computer to approve the login:',
    );
    ctx.out.info(`  ${start.verification_uri_complete}`);
    ctx.out.info(`Your code: ${start.user_code}  (check that the browser shows the same code)`);
    ctx.out.info(expiryNote(start.expires_in));
    spinner = await ctx.spinner('Waiting for approval in the browser… (Ctrl-C to cancel)');
    const limit = deadline(ctx, start.expires_in);
    let pending: Awaited<ReturnType<typeof listener.wait>>;
    try {
      pending = await listener.wait(limit.signal);
    } catch (err) {
      if (limit.expired()) loginFailed(new ApiError('expired', { code: 'EXPIRED_TOKEN', status: 400 }));
      throw err;
    }
    if (pending.result.kind === 'error') {
      pending.respond({
        ok: false,
        title: 'Login denied',
        message: 'No key was created. You can close this tab.',
      });
      loginFailed(new ApiError('denied', { code: 'ACCESS_DENIED', status: 400 }));
    }
    let result: CliLoginExchangeResult;
    try {
      result = await client.exchangeCliLogin(start.login_id, {
        code_verifier: pkce.verifier,
        code: pending.result.code,
      });
    } catch (err) {
      pending.respond({
        ok: false,
        title: 'Login failed',
        message: 'The terminal could not finish the login. Run "breeze login" again.',
      });
      loginFailed(err);
    }
    pending.respond({
      ok: true,
      title: 'You are logged in',
      message: `Signed in as ${result.user.email}. You can close this tab and return to your terminal.`,
    });
    spinner.stop();
    return toResult(result);
  } finally {
    spinner?.stop();
    await listener.close();
  }
}

type Exchange = (loginId: string, body: { code_verifier: string }) => Promise<CliLoginExchangeResult>;

/** Device mode: print where to go, then poll the exchange at the server's pace. */
async function pollDevice(
  ctx: CliContext,
  start: CliLoginStart,
  verifier: string,
  exchange: Exchange,
): Promise<LoginResult> {
  for (const line of deviceInstructions(start, ctx.env)) ctx.out.info(line);
  ctx.out.info(expiryNote(start.expires_in));
  const spinner = await ctx.spinner('Waiting for approval… (Ctrl-C to cancel)');
  const limit = deadline(ctx, start.expires_in);
  let interval = clampInterval(start.interval);
  let networkFailures = 0;
  try {
    for (;;) {
      try {
        // the first exchange may come at once; then wait `interval` after each answer, so the
        // gap the server sees is never shorter than that
        const result = await exchange(start.login_id, { code_verifier: verifier });
        return toResult(result);
      } catch (err) {
        if (err instanceof ApiError && err.code === 'AUTHORIZATION_PENDING') {
          networkFailures = 0;
        } else if (err instanceof ApiError && err.code === 'SLOW_DOWN') {
          const told = (err.details as { interval?: unknown } | undefined)?.interval;
          // RFC 8628 §3.5: without a new interval from the server, add 5 s
          interval = clampInterval(
            typeof told === 'number' && told > interval ? told : interval + (told ? 0 : 5),
          );
        } else if (err instanceof ApiError && err.code === 'RATE_LIMITED') {
          // a busy address (many logins behind one NAT): wait as told, then poll on
          interval = clampInterval(Math.max(interval, err.retryAfter ?? interval));
        } else if (err instanceof NetworkError && ++networkFailures <= 5) {
          // a blip (server restart, Wi-Fi): keep polling a little longer
        } else {
          loginFailed(err);
        }
      }
      try {
        await delay(interval * 1000, limit.signal);
      } catch (err) {
        if (limit.expired()) loginFailed(new ApiError('expired', { code: 'EXPIRED_TOKEN', status: 400 }));
        throw err;
      }
    }
  } finally {
    spinner.stop();
  }
}
