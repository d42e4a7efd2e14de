import { Command, InvalidArgumentError } from 'commander';
import type { DeliveryInfo } from '../../../client/webhooks.js';
import type { CliContext } from '../../context.js';
import { shortTime } from '../../teams.js';
import type { CommandHost } from '../host.js';
import { outcome, webhookSession } from './common.js';

/** `GET /v1/webhooks/:id/deliveries`, newest first, as the API answers it. */
export async function runWebhooksDeliveries(
  opts: { id: string; limit?: number },
  ctx: CliContext,
): Promise<{ data: DeliveryInfo[] }> {
  const s = await webhookSession(ctx);
  return s.hooks.deliveries(opts.id, opts.limit);
}

function limitArg(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 200)
    throw new InvalidArgumentError('a number from 1 to 200.');
  return Number(v);
}

export function createWebhooksDeliveriesCommand(host: CommandHost): Command {
  return new Command('deliveries')
    .description('the delivery log of a webhook, newest first')
    .argument('<id>', 'the webhook id (see "breeze webhooks list")')
    .option('--limit <n>', 'how many (1-200)', limitArg, 50)
    .addHelpText(
      'after',
      '\nExamples:\n  $ breeze webhooks deliveries whk_01J...\n  $ breeze webhooks deliveries whk_01J... --json',
    )
    .action(async (id: string, o: { limit: number }, cmd: Command) => {
      const ctx = await host.context(cmd);
      const result = await runWebhooksDeliveries({ id, limit: o.limit }, ctx);
      if (ctx.json) return ctx.out.json(result);
      if (result.data.length === 0)
        return ctx.out.info('No deliveries yet. Send one with "breeze webhooks test <id>".');
      const { renderTable } = await import('../../ui/table.js');
      const rows = result.data.map((d) => [
        d.id,
        d.event,
        d.status,
        String(d.attempts),
        // null before any attempt; a server may also leave it out
        d.last_status_code == null ? '-' : String(d.last_status_code),
        shortTime(d.next_attempt_at),
        outcome(d),
      ]);
      ctx.out.data(renderTable(['ID', 'EVENT', 'STATUS', 'ATTEMPTS', 'CODE', 'NEXT', 'OUTCOME'], rows));
    });
}
