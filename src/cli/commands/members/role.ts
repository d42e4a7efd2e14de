import { Command } from 'commander';
import type { MemberInfo, Role } from '../../../client/platform.js';
import type { CliContext } from '../../context.js';
import { currentOrg, explainConflict, findMember, teamSession } from '../../teams.js';
import type { CommandHost } from '../host.js';
import { roleArg } from './role-arg.js';

/**
 * Changes a member's role (`user`: a user id or an email). Their keys are capped by the new role at
 * once. The last owner cannot be demoted (409).
 */
export async function runMembersRole(
  opts: { user: string; role: Role },
  ctx: CliContext,
): Promise<MemberInfo> {
  const t = await teamSession(ctx);
  const org = await currentOrg(ctx, t);
  const member = await findMember(ctx, t, org, opts.user);
  return explainConflict(
    () => t.platform.setRole(org.id, member.user.id, opts.role),
    `Cannot make ${member.user.email} ${opts.role}: an organization keeps at least one owner.`,
    `Make another member owner first ("breeze members role <user> owner").`,
  );
}

export function createMembersRoleCommand(host: CommandHost): Command {
  return new Command('role')
    .description("change a member's role (owner or admin; admins cannot change owners)")
    .argument('<user>', 'a user id or email (see "breeze members list")')
    .argument('<role>', 'owner, admin, member or viewer', roleArg)
    .addHelpText(
      'after',
      '\nExamples:\n  $ breeze members role dev@example.com viewer\n  $ breeze members role usr_01J... admin --json',
    )
    .action(async (user: string, role: Role, _o, cmd: Command) => {
      const ctx = await host.context(cmd);
      const m = await runMembersRole({ user, role }, ctx);
      if (ctx.json) return ctx.out.json(m);
      ctx.out.success(`${m.user.email} is now ${m.role}.`);
    });
}
