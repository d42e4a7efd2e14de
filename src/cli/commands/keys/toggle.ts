import { Command } from 'commander';
import type { ApiKeyInfo } from '../../../core/types.js';
import type { CliContext } from '../../context.js';
import type { CommandHost } from '../index.js';

/** Disables or re-enables a key. */
export async function runKeysToggle(
  opts: { keyId: string; action: 'disable' | 'enable' },
  ctx: CliContext,
): Promise<ApiKeyInfo> {
  const { client } = await ctx.authenticated();
  return opts.action === 'disable' ? client.disableKey(opts.keyId) : client.enableKey(opts.keyId);
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
      else ctx.out.success(`Key ${key.key_id} (${key.name}) is ${key.status}.`);
    });
}
