import { InvalidArgumentError } from 'commander';
import { parseDuration } from '../../../core/duration.js';
import type { CreatedKeyResponse } from '../../../core/types.js';
import type { CliContext } from '../../context.js';

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
