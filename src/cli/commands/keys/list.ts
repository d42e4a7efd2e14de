import { Command } from 'commander';
import type { ApiKeyInfo } from '../../../core/types.js';
import type { CliContext } from '../../context.js';
import type { CommandHost } from '../host.js';

/** The caller's keys, newest first; without `all`, only usable ones (active, expiring). */
export async function runKeysList(
  opts: { all?: boolean; project?: string },
  ctx: CliContext,
): Promise<{ data: ApiKeyInfo[] }> {
  const { client } = await ctx.authenticated();
  let projectId: string | undefined;
  // --project, else BREEZE_PROJECT / .breeze.json (breeze link)
  const projectRef = opts.project ?? ctx.project();
  if (projectRef !== undefined) {
    const { projectIdFor } = await import('../../teams.js');
    projectId = await projectIdFor(ctx, projectRef);
  }
  const keys = await client.listAllKeys(projectId === undefined ? {} : { project_id: projectId });
  return { data: opts.all ? keys : keys.filter((k) => k.status === 'active' || k.status === 'expiring') };
}

function day(ts: string | null): string {
  return ts ? ts.slice(0, 16).replace('T', ' ') : '-';
}

export function createListCommand(host: CommandHost): Command {
  return new Command('list')
    .alias('ls')
    .description('list your keys')
    .option('--all', 'include disabled and expired keys')
    .option('--project <id|name>', 'only the keys of this project (a name: of the current organization)')
    .addHelpText(
      'after',
      '\nExamples:\n  $ breeze keys list\n  $ breeze keys list --all --json\n  $ breeze keys list --project billing',
    )
    .action(async (opts: { all?: boolean; project?: string }, cmd: Command) => {
      const ctx = await host.context(cmd);
      const result = await runKeysList(opts, ctx);
      if (ctx.json) return ctx.out.json(result);
      if (result.data.length === 0) {
        ctx.out.info(opts.all ? 'No keys.' : 'No active keys (see --all).');
        return;
      }
      const { renderTable } = await import('../../ui/table.js');
      const own = ctx.config.profile(ctx.profile)?.key_id;
      const rows = result.data.map((k) => [
        k.key_id === own ? `${k.key_id} *` : k.key_id,
        k.name,
        k.prefix,
        k.scopes.join(','),
        k.status,
        day(k.created_at),
        day(k.last_used_at),
        day(k.expires_at),
      ]);
      const headers = ['ID', 'NAME', 'PREFIX', 'SCOPES', 'STATUS', 'CREATED', 'LAST USED', 'EXPIRES'];
      // servers with usage counters say how often each key was used in the last 24 hours
      if (result.data.some((k) => k.requests_24h !== undefined)) {
        headers.push('REQ 24H');
        result.data.forEach((k, i) => {
          rows[i]?.push(k.requests_24h === undefined ? '-' : String(k.requests_24h));
        });
      }
      ctx.out.data(renderTable(headers, rows, { statusColumn: 4 }));
    });
}
