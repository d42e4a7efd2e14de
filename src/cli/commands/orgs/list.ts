import { Command } from 'commander';
import type { OrgInfo } from '../../../client/platform.js';
import type { CliContext } from '../../context.js';
import { currentOrg, shortTime, teamSession } from '../../teams.js';
import type { CommandHost } from '../host.js';

/** `GET /v1/orgs` as the API answers it, plus which one is current (for the table). */
export async function runOrgsList(
  _opts: object,
  ctx: CliContext,
): Promise<{ data: OrgInfo[]; current: string | null }> {
  const t = await teamSession(ctx);
  const result = await t.platform.listOrgs();
  let current: string | null = null;
  try {
    current = (await currentOrg(ctx, t)).id;
  } catch {
    // a server that names no org for the key: nothing is marked current
  }
  return { data: result.data, current };
}

export function createOrgsListCommand(host: CommandHost): Command {
  return new Command('list')
    .alias('ls')
    .description('list your organizations and your role in each (* = current)')
    .addHelpText('after', '\nExamples:\n  $ breeze orgs list\n  $ breeze orgs list --json')
    .action(async (_o, cmd: Command) => {
      const ctx = await host.context(cmd);
      const { data, current } = await runOrgsList({}, ctx);
      if (ctx.json) return ctx.out.json({ data });
      if (data.length === 0) return ctx.out.info('No organizations.');
      const { renderTable } = await import('../../ui/table.js');
      const rows = data.map((o) => [
        o.id === current ? `${o.id} *` : o.id,
        o.name,
        o.role,
        shortTime(o.created_at),
      ]);
      ctx.out.data(renderTable(['ID', 'NAME', 'ROLE', 'CREATED'], rows));
    });
}
