import { Command } from 'commander';
import type { CliContext } from '../../context.js';
import type { CommandHost } from '../host.js';
import { webhookSession } from './common.js';

/** Deletes a webhook and its delivery log (owner or admin); pending deliveries are dropped. */
export async function runWebhooksDelete(
  opts: { id: string },
  ctx: CliContext,
): Promise<{ id: string; deleted: true }> {
  const s = await webhookSession(ctx);
  await s.hooks.delete(opts.id);
  return { id: opts.id, deleted: true };
}

export function createWebhooksDeleteCommand(host: CommandHost): Command {
  return new Command('delete')
    .alias('rm')
    .description('delete a webhook (its pending deliveries are dropped)')
    .argument('<id>', 'the webhook id (see "breeze webhooks list")')
    .addHelpText('after', '\nExamples:\n  $ breeze webhooks delete whk_01J...')
    .action(async (id: string, _o, cmd: Command) => {
      const ctx = await host.context(cmd);
      const r = await runWebhooksDelete({ id }, ctx);
      if (ctx.json) return ctx.out.json(r);
      ctx.out.success(`Deleted webhook ${r.id}.`);
    });
}
