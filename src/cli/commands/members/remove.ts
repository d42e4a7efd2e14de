import { Command } from 'commander';
import type { CliContext } from '../../context.js';
import { currentOrg, explainConflict, findMember, teamSession } from '../../teams.js';
import type { CommandHost } from '../host.js';

export interface MemberRemoved {
  org_id: string;
  user: { id: string; email: string };
  removed: true;
  /** you removed yourself: the profile no longer points at that organization */
  left: boolean;
}

/**
 * Removes a member (`user`: a user id or an email) from the current organization; removing yourself
 * leaves it. Their keys in it stop working. The last owner cannot be removed (409).
 */
export async function runMembersRemove(opts: { user: string }, ctx: CliContext): Promise<MemberRemoved> {
  const t = await teamSession(ctx);
  const org = await currentOrg(ctx, t);
  const member = await findMember(ctx, t, org, opts.user);
  await explainConflict(
    () => t.platform.removeMember(org.id, member.user.id),
    `Cannot remove ${member.user.email}: an organization keeps at least one owner.`,
    `Make another member owner first ("breeze members role <user> owner").`,
  );
  let left = false;
  if (org.source === 'profile' && t.session.saved?.user_id === member.user.id) {
    // we left the profile's current organization: fall back to the key's own organization
    await ctx.config.update((data) => {
      const p = data.profiles[ctx.profile];
      if (p?.org_id === org.id) delete p.org_id;
    });
    left = true;
  }
  return { org_id: org.id, user: { id: member.user.id, email: member.user.email }, removed: true, left };
}

export function createMembersRemoveCommand(host: CommandHost): Command {
  return new Command('remove')
    .alias('rm')
    .description('remove a member (or yourself: leave); their keys in this organization stop working')
    .argument('<user>', 'a user id or email (see "breeze members list")')
    .addHelpText(
      'after',
      '\nExamples:\n  $ breeze members remove dev@example.com\n  $ breeze members remove usr_01J... --json',
    )
    .action(async (user: string, _o, cmd: Command) => {
      const ctx = await host.context(cmd);
      const r = await runMembersRemove({ user }, ctx);
      if (ctx.json) return ctx.out.json(r);
      ctx.out.success(`Removed ${r.user.email} from the organization; their keys in it no longer work.`);
      if (r.left)
        ctx.out.info('You left the current organization; commands now use the organization of your key.');
    });
}
