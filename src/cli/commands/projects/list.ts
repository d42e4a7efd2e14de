import { Command } from 'commander';
import type { ProjectInfo } from '../../../client/platform.js';
import type { CliContext } from '../../context.js';
import { currentOrg, inCurrentOrg, shortTime, teamSession } from '../../teams.js';
import type { CommandHost } from '../host.js';

/** `GET /v1/orgs/:org_id/projects` of the current organization, as the API answers it. */
export async function runProjectsList(_opts: object, ctx: CliContext): Promise<{ data: ProjectInfo[] }> {
  const t = await teamSession(ctx);
  const org = await currentOrg(ctx, t);
  return inCurrentOrg(ctx, org, () => t.platform.listProjects(org.id));
}

export function createProjectsListCommand(host: CommandHost): Command {
  return new Command('list')
    .alias('ls')
    .description('list the projects of the current organization')
    .addHelpText('after', '\nExamples:\n  $ breeze projects list\n  $ breeze projects list --json')
    .action(async (_o, cmd: Command) => {
      const ctx = await host.context(cmd);
      const result = await runProjectsList({}, ctx);
      if (ctx.json) return ctx.out.json(result);
      if (result.data.length === 0) return ctx.out.info('No projects.');
      const { renderTable } = await import('../../ui/table.js');
      const rows = result.data.map((p) => [p.id, p.name, shortTime(p.created_at)]);
      ctx.out.data(renderTable(['ID', 'NAME', 'CREATED'], rows));
    });
}
