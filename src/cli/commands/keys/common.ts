import { InvalidArgumentError } from 'commander';
import { parseDuration } from '../../../core/duration.js';
import type { CreatedKeyResponse } from '../../../core/types.js';
import type { CliContext } from '../../context.js';
import { describeError, EXIT, exitCodeOf, InterruptedError, UserError } from '../../errors.js';

/** commander parser for `0`, `90s`, `15m`, `24h`, `30d` -> seconds */
export function durationArg(value: string): number {
  try {
    return parseDuration(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/**
 * Prints a freshly minted key: the plaintext on stdout (or the whole response as JSON), then on
 * stderr either where it was stored (`storage`) or, when it was not, a warning to copy it now.
 */
export function printNewKey(ctx: CliContext, created: CreatedKeyResponse, storage?: string | null): void {
  if (ctx.json) ctx.out.json(created);
  else ctx.out.data(created.api_key);
  if (storage) {
    const where = storage === 'keychain' ? 'the OS keychain' : `${ctx.configDir}/credentials.json`;
    ctx.out.success(
      `Stored key ${created.key_id} (${created.prefix}…) for profile "${ctx.profile}" in ${where}; "breeze token" prints it.`,
    );
  } else {
    ctx.out.warn(`Key ${created.key_id} (${created.prefix}…): copy it now, it will not be shown again.`);
  }
}

/** The stored profile's key id on the current server, if any. */
export function profileKeyId(ctx: CliContext): string | undefined {
  const saved = ctx.config.profile(ctx.profile);
  return saved && saved.server === ctx.server() ? saved.key_id : undefined;
}

/**
 * A key the server just made that could not be stored in the profile (keychain or file error, the
 * check of the new key failed, an interrupt while storing it). Its plaintext exists nowhere else:
 * `withUnstoredKeyPrinted` prints it before the failure is reported, so it is not lost with the error.
 */
export class KeyNotStoredError extends UserError {
  override name = 'KeyNotStoredError';
  constructor(
    readonly created: CreatedKeyResponse,
    profile: string,
    cause: unknown,
    /** what it means that the key is not stored, e.g. that the previous one no longer works */
    consequence: string,
  ) {
    const why = (describeError(cause, false) ?? 'unknown error').split('\n')[0]!.replace(/^Error: /, '');
    super(
      `Key ${created.key_id} was created (printed above) but not stored in profile "${profile}": ${why}`,
      {
        cause,
        hint: `${consequence}To store it: fix the cause, copy the key, then run "breeze login --with-key" and paste it (the profile's current key is then deleted on the server).`,
        exitCode: exitCodeOf(cause) === EXIT.INTERRUPTED ? EXIT.INTERRUPTED : EXIT.FAILURE,
      },
    );
  }
}

/**
 * Stores a new key with `store`; a failure becomes a KeyNotStoredError carrying the key. Meanwhile
 * a Ctrl-C or SIGTERM, which would otherwise end the process with the key printed nowhere, waits
 * for the store to finish (it is short: the new key's check and one write); a second one stops at
 * once, the key printed.
 */
export async function storeNewKey<T>(
  ctx: CliContext,
  created: CreatedKeyResponse,
  consequence: string,
  store: () => Promise<T>,
): Promise<T> {
  let signals = 0;
  let stopNow!: (err: Error) => void;
  const stopped = new Promise<never>((_, reject) => {
    stopNow = reject;
  });
  ctx.onSignal(() => {
    if (++signals === 1) {
      ctx.out.info('Storing the new key before stopping (interrupt again to stop now: the key is printed).');
    } else {
      stopNow(new InterruptedError());
    }
  });
  try {
    return await Promise.race([store(), stopped]);
  } catch (err) {
    throw new KeyNotStoredError(created, ctx.profile, err, consequence);
  } finally {
    ctx.onSignal(null);
  }
}

/**
 * Runs a command that makes a key: if the key could not be stored, it is printed (as without
 * `--save`: on stdout, or the whole response with `--json`) and then the failure is reported.
 */
export async function withUnstoredKeyPrinted<T>(ctx: CliContext, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof KeyNotStoredError) printNewKey(ctx, err.created, null);
    throw err;
  }
}
