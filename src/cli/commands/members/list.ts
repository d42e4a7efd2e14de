import { Command } from 'commander';
import type { MemberInfo } from '../../../client/platform.js';
import type { CliContext } from '../../context.js';
import { currentOrg, inCurrentOrg, shortTime, teamSession } from '../../teams.js';
import type { CommandHost } from '../host.js';

/** `GET /v1/orgs/:org_id/members` of the current organization, as the API answers it. */
export async function runMembersList(_opts: object, ctx: CliContext): Promise<{ data: MemberInfo[] }> {
  const t = await teamSession(ctx);
  const org = await currentOrg(ctx, t);
  return inCurrentOrg(ctx, org, () => t.platform.listMembers(org.id));
}

export function createMembersListCommand(host: CommandHost): Command {
  return new Command('list')
    .alias('ls')
    .description('list the members of the current organization and their roles')
    .addHelpText('after', '\nExamples:\n  $ breeze members list\n  $ breeze members list --json')
    .action(async (_o, cmd: Command) => {
      const ctx = await host.context(cmd);
      const result = await runMembersList({}, ctx);
      if (ctx.json) return ctx.out.json(result);
      if (result.data.length === 0) return ctx.out.info('No members.');
      const { renderTable } = await import('../../ui/table.js');
      const rows = result.data.map((m) => [m.user.id, m.user.email, m.role, shortTime(m.joined_at)]);
      ctx.out.data(renderTable(['USER', 'EMAIL', 'ROLE', 'JOINED'], rows));
    });
}
