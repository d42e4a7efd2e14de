import { Command } from 'commander';
import type { ApiKeyInfo } from '../../../core/types.js';
import type { CliContext } from '../../context.js';
import type { CommandHost } from '../host.js';

/** Disables or re-enables a key. */
export async function runKeysToggle(
  opts: { keyId: string; action: 'disable' | 'enable' },
  ctx: CliContext,
): Promise<ApiKeyInfo> {
  const { client } = await ctx.authenticated();
  return opts.action === 'disable' ? client.disableKey(opts.keyId) : client.enableKey(opts.keyId);
}

/**
 * What the user asked about after `disable` / `enable`: whether the key is on, and when it stops on
 * its own. API statuses (`expiring`, `expired`) are not shown as words: `expiring` only means there
 * is an expiry, which "enabled" plus the date says plainly.
 */
export function toggleMessage(key: ApiKeyInfo, now: Date): string {
  const what = `Key ${key.key_id} (${key.name})`;
  if (key.status === 'disabled') return `${what} is disabled: it is refused until you enable it again.`;
  const expires = key.expires_at ? Date.parse(key.expires_at) : Number.NaN;
  if (key.status === 'expired' || expires <= now.getTime()) {
    return `${what} is enabled, but it expired at ${key.expires_at}: it stays refused.`;
  }
  return key.expires_at ? `${what} is enabled; it expires ${key.expires_at}.` : `${what} is enabled.`;
}

export function createToggleCommand(host: CommandHost, action: 'disable' | 'enable'): Command {
  return new Command(action)
    .description(
      action === 'disable' ? 'disable a key (refused until enabled again)' : 're-enable a disabled key',
    )
    .argument('<key_id>', 'the key')
    .addHelpText('after', `\nExample:\n  $ breeze keys ${action} key_01J...`)
    .action(async (keyId: string, _o, cmd: Command) => {
      const ctx = await host.context(cmd);
      const key = await runKeysToggle({ keyId, action }, ctx);
      if (ctx.json) ctx.out.json(key);
      else ctx.out.success(toggleMessage(key, ctx.clock()));
    });
}
