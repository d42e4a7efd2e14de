import { Command, InvalidArgumentError } from 'commander';
import type { InvitationInfo, Role } from '../../../client/platform.js';
import { isEmailLike } from '../../../client/validate.js';
import type { CliContext } from '../../context.js';
import { currentOrg, explainConflict, inCurrentOrg, teamSession } from '../../teams.js';
import type { CommandHost } from '../host.js';
import { roleArg } from './role-arg.js';

function emailArg(value: string): string {
  const v = value.trim();
  if (!isEmailLike(v)) throw new InvalidArgumentError('not an email address.');
  return v;
}

/** Invites `email` to the current organization with `role` (owner or admin); the server mails a code. */
export async function runMembersInvite(
  opts: { email: string; role: Role },
  ctx: CliContext,
): Promise<InvitationInfo> {
  const t = await teamSession(ctx);
  const org = await currentOrg(ctx, t);
  return explainConflict(
    () => inCurrentOrg(ctx, org, () => t.platform.invite(org.id, { email: opts.email, role: opts.role })),
    `Cannot invite ${opts.email}.`,
    'They may be a member already (see "breeze members list").',
  );
}

export function createMembersInviteCommand(host: CommandHost): Command {
  return new Command('invite')
    .description('invite someone by email; they accept with "breeze invitations accept <id> --code <code>"')
    .argument('<email>', 'their email address', emailArg)
    .requiredOption('--role <role>', 'owner, admin, member or viewer', roleArg)
    .addHelpText(
      'after',
      '\nExamples:\n  $ breeze members invite dev@example.com --role member\n  $ breeze members invite ops@example.com --role admin --json',
    )
    .action(async (email: string, opts: { role: Role }, cmd: Command) => {
      const ctx = await host.context(cmd);
      const inv = await runMembersInvite({ email, role: opts.role }, ctx);
      if (ctx.json) return ctx.out.json(inv);
      ctx.out.data(inv.id);
      ctx.out.success(
        `Invited ${inv.email} as ${inv.role} (invitation ${inv.id}, valid until ${inv.expires_at}).`,
      );
      ctx.out.info(
        `They got an email with a code; they accept with "breeze invitations accept ${inv.id} --code <code>".`,
      );
    });
}
