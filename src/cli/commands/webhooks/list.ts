import { Command } from 'commander';
import type { WebhookInfo } from '../../../client/webhooks.js';
import type { CliContext } from '../../context.js';
import { inCurrentOrg, shortTime } from '../../teams.js';
import type { CommandHost } from '../host.js';
import { orgFor, webhookSession } from './common.js';

/** `GET /v1/orgs/:org_id/webhooks` of the current organization (or `--org`), as the API answers it. */
export async function runWebhooksList(
  opts: { org?: string },
  ctx: CliContext,
): Promise<{ data: WebhookInfo[] }> {
  const s = await webhookSession(ctx);
  const org = await orgFor(ctx, s, opts.org);
  return inCurrentOrg(ctx, org, () => s.hooks.list(org.id));
}

export function createWebhooksListCommand(host: CommandHost): Command {
  return new Command('list')
    .alias('ls')
    .description('list the webhooks of the current organization (owner or admin)')
    .option('--org <org>', 'an organization id or name (default: the current one)')
    .addHelpText('after', '\nExamples:\n  $ breeze webhooks list\n  $ breeze webhooks list --json')
    .action(async (o: { org?: string }, cmd: Command) => {
      const ctx = await host.context(cmd);
      const result = await runWebhooksList(o, ctx);
      if (ctx.json) return ctx.out.json(result);
      if (result.data.length === 0)
        return ctx.out.info('No webhooks. Create one with "breeze webhooks create <url> --events ...".');
      const { renderTable } = await import('../../ui/table.js');
      const rows = result.data.map((h) => [h.id, h.url, h.events.join(','), shortTime(h.created_at)]);
      ctx.out.data(renderTable(['ID', 'URL', 'EVENTS', 'CREATED'], rows));
    });
}
