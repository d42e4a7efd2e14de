import { Command } from 'commander';
import type { CliContext } from '../../context.js';
import type { CommandHost } from '../host.js';

/** Deletes a key for good after confirmation (`yes` skips it). Deleting the profile's own key also forgets it locally. */
export async function runKeysDelete(
  opts: { keyId: string; yes?: boolean },
  ctx: CliContext,
): Promise<{ key_id: string; deleted: boolean; forgot_profile: boolean }> {
  const { session, client } = await ctx.authenticated();
  if (!opts.yes) {
    const ok = await ctx.prompts.confirm(
      `Delete key ${opts.keyId}? It stops working at once and cannot be restored.`,
      {
        flag: '--yes',
      },
    );
    if (!ok) return { key_id: opts.keyId, deleted: false, forgot_profile: false };
  }
  await client.deleteKey(opts.keyId);
  let forgot = false;
  const saved = session.saved;
  if (saved && saved.key_id === opts.keyId) {
    await ctx.config.locked(async () => {
      await ctx.credentials.remove(ctx.account(saved.server), saved.storage, { locked: true });
      await ctx.config.update((d) => void delete d.profiles[ctx.profile], { locked: true });
    });
    forgot = true;
  }
  return { key_id: opts.keyId, deleted: true, forgot_profile: forgot };
}

export function createDeleteCommand(host: CommandHost): Command {
  return new Command('delete')
    .alias('rm')
    .description('delete a key for good (asks first; --yes in scripts)')
    .argument('<key_id>', 'the key')
    .option('-y, --yes', 'do not ask for confirmation')
    .addHelpText(
      'after',
      '\nExamples:\n  $ breeze keys delete key_01J...\n  $ breeze keys delete key_01J... --yes --json',
    )
    .action(async (keyId: string, opts: { yes?: boolean }, cmd: Command) => {
      const ctx = await host.context(cmd);
      const r = await runKeysDelete({ keyId, yes: opts.yes }, ctx);
      if (ctx.json) ctx.out.json(r);
      if (!r.deleted) ctx.out.info('Nothing deleted.');
      else
        ctx.out.success(
          `Deleted key ${r.key_id}.${r.forgot_profile ? ` It was profile "${ctx.profile}"'s key: logged out.` : ''}`,
        );
    });
}
