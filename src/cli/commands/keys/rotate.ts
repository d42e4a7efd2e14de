import { Command } from 'commander';
import { displayPrefix } from '../../../core/api-key.js';
import type { RotatedKeyResponse } from '../../../core/types.js';
import type { CliContext } from '../../context.js';
import { UsageError } from '../../errors.js';
import { replaceStoredKey } from '../../session.js';
import type { CommandHost } from '../host.js';
import { durationArg, printNewKey, storeNewKey, withUnstoredKeyPrinted } from './common.js';

export interface KeysRotateOptions {
  keyId?: string;
  /** rotate the key in use (BREEZE_API_KEY or the stored one) */
  self?: boolean;
  /** seconds the old key stays valid (server default 1 h) */
  grace?: number;
  /** store the new key in the profile even when it was not the profile's own key */
  save?: boolean;
}

/**
 * Rotates a key. When the rotated key is the profile's stored key, the stored copy is replaced
 * (always, whatever `save` says): the old one may stop working at once.
 */
export async function runKeysRotate(
  opts: KeysRotateOptions,
  ctx: CliContext,
): Promise<{ rotated: RotatedKeyResponse; stored: string | null }> {
  if (!opts.self && !opts.keyId)
    throw new UsageError('Which key?', { hint: 'Pass a key id, or --self for the key in use.' });
  if (opts.self && opts.keyId) throw new UsageError('Pass a key id or --self, not both.');
  const { session, client } = await ctx.authenticated();
  const keyId = opts.self ? (await client.me()).auth.key_id : opts.keyId!;
  if (!keyId) throw new UsageError('--self needs an API key as credential.');
  const rotated = await client.rotateKey(
    keyId,
    opts.grace === undefined ? {} : { grace_period_s: opts.grace },
  );
  const saved = session.saved;
  const isProfileKey =
    saved !== undefined &&
    saved.key_id === keyId &&
    // with BREEZE_API_KEY in use, the profile's stored key is the rotated one only if they match
    (session.source !== 'env' || saved.prefix === displayPrefix(session.apiKey));
  let stored: string | null = null;
  if (isProfileKey || opts.save) {
    // the profile's own key: what is stored is (most likely) the previous one, soon or now dead
    const consequence = isProfileKey ? `The previous key ${keyId} ${previousKeyFate(ctx, rotated)}. ` : '';
    stored = await storeNewKey(ctx, rotated, consequence, async () =>
      replaceStoredKey(ctx, rotated.api_key, rotated, (await client.withKey(rotated.api_key).me()).user),
    );
  }
  return { rotated, stored };
}

/** "no longer works" or "works until <time>": the rotated key's grace period. */
function previousKeyFate(ctx: CliContext, rotated: RotatedKeyResponse): string {
  const exp = rotated.previous.expires_at;
  // API.md: the previous key's expires_at is the end of its grace period; a server that leaves it
  // out (or sends something that is not a time) does not get "works until null" printed
  const at = exp ? Date.parse(exp) : Number.NaN;
  if (Number.isNaN(at)) return 'may keep working for a grace period (the server did not say until when)';
  return at <= ctx.clock().getTime() ? 'no longer works' : `works until ${exp}`;
}

export function createRotateCommand(host: CommandHost): Command {
  return new Command('rotate')
    .description('replace a key by a new one (same name, scopes, expiry); the old one lives for --grace')
    .argument('[key_id]', 'the key to rotate')
    .option('--self', 'rotate the key in use (BREEZE_API_KEY or the stored one)')
    .option(
      '--grace <duration>',
      'how long the old key keeps working: 0, 90s, 15m, 24h (default 1h)',
      durationArg,
    )
    .option('--save', 'store the new key in this profile')
    .addHelpText(
      'after',
      `
Examples:
  $ breeze keys rotate --self                          the stored key is replaced
  $ BREEZE_API_KEY=$OLD breeze keys rotate --self --grace 0 --json | jq -r .api_key
  $ breeze keys rotate key_01J... --grace 24h`,
    )
    .action(async (keyId: string | undefined, opts: KeysRotateOptions, cmd: Command) => {
      const ctx = await host.context(cmd);
      const { rotated, stored } = await withUnstoredKeyPrinted(ctx, () =>
        runKeysRotate({ ...opts, keyId }, ctx),
      );
      printNewKey(ctx, rotated, stored);
      ctx.out.info(`Previous key ${rotated.previous.key_id} ${previousKeyFate(ctx, rotated)}.`);
    });
}
