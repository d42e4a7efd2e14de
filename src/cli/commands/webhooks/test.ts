import { Command, InvalidArgumentError } from 'commander';
import type { DeliveryInfo } from '../../../client/webhooks.js';
import type { CliContext } from '../../context.js';
import { UserError } from '../../errors.js';
import type { CommandHost } from '../host.js';
import { outcome, webhookSession } from './common.js';

export interface WebhooksTestOptions {
  id: string;
  /** wait this long for the first attempt's outcome; 0 returns once the ping is queued */
  waitMs: number;
  /** between looks at the delivery log */
  pollMs?: number;
}

/**
 * Sends a `ping` to a webhook and (unless `waitMs` is 0) waits for its first attempt: resolves
 * with the delivery when it was delivered or is still queued, throws a UserError (exit 1) when the
 * receiver refused it.
 */
export async function runWebhooksTest(opts: WebhooksTestOptions, ctx: CliContext): Promise<DeliveryInfo> {
  const s = await webhookSession(ctx);
  let d = await s.hooks.test(opts.id);
  const until = Date.now() + opts.waitMs;
  while (opts.waitMs > 0 && d.status === 'pending' && d.attempts === 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 250));
    const found = (await s.hooks.deliveries(opts.id, 20)).data.find((x) => x.id === d.id);
    if (found) d = found;
  }
  if (d.status !== 'delivered' && d.attempts > 0) {
    throw new UserError(`The ping to webhook ${opts.id} was not delivered: ${outcome(d)}.`, {
      hint: `Breeze retries with backoff for 24 h; see "breeze webhooks deliveries ${opts.id}".`,
    });
  }
  return d;
}

function secondsArg(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 120) throw new InvalidArgumentError('seconds from 0 to 120.');
  return Number(v);
}

export function createWebhooksTestCommand(host: CommandHost): Command {
  return new Command('test')
    .description('send a ping event to a webhook and report how its receiver answered')
    .argument('<id>', 'the webhook id (see "breeze webhooks list")')
    .option('--wait <seconds>', 'how long to wait for the answer (0: just queue the ping)', secondsArg, 15)
    .addHelpText(
      'after',
      '\nExamples:\n  $ breeze webhooks test whk_01J...\n  $ breeze webhooks test whk_01J... --wait 0 --json',
    )
    .action(async (id: string, o: { wait: number }, cmd: Command) => {
      const ctx = await host.context(cmd);
      const d = await runWebhooksTest({ id, waitMs: o.wait * 1000 }, ctx);
      if (ctx.json) return ctx.out.json(d);
      ctx.out.data(d.id);
      if (d.status === 'delivered')
        ctx.out.success(
          d.last_status_code == null
            ? 'Ping delivered.'
            : `Ping delivered: the receiver answered ${d.last_status_code}.`,
        );
      else ctx.out.info(`Ping queued (delivery ${d.id}); see "breeze webhooks deliveries ${id}".`);
    });
}
