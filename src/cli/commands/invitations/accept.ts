import { Command } from 'commander';
import type { MembershipInfo } from '../../../client/platform.js';
import type { CliContext } from '../../context.js';
import { UsageError } from '../../errors.js';
import { teamSession } from '../../teams.js';
import type { CommandHost } from '../index.js';

/**
 * Accepts invitation `id` with the mailed code, as the logged-in user (who must own the invited
 * email). A wrong code or another user's invitation is a 404 (exit 4).
 */
export async function runInvitationsAccept(
  opts: { id: string; code: string },
  ctx: CliContext,
): Promise<MembershipInfo> {
  // as mailed: 8 of 0-9A-Z; people type it in lower case or with a space or dash in the middle
  const code = opts.code.replace(/[\s-]/g, '').toUpperCase();
  if (code === '')
    throw new UsageError('The code is empty.', {
      hint: 'Pass the code from the invitation email: --code <code>.',
    });
  const t = await teamSession(ctx);
  return t.platform.acceptInvitation(opts.id.trim(), code);
}

export function createInvitationsAcceptCommand(host: CommandHost): Command {
  return new Command('accept')
    .description('join an organization with the id and code from the invitation email')
    .argument('<id>', 'the invitation id (inv_...)')
    .requiredOption('--code <code>', 'the code from the email')
    .addHelpText(
      'after',
      '\nExamples:\n  $ breeze invitations accept inv_01J... --code 7K2M9Q4X\n  $ breeze invitations accept inv_01J... --code 7K2M9Q4X --json',
    )
    .action(async (id: string, opts: { code: string }, cmd: Command) => {
      const ctx = await host.context(cmd);
      const m = await runInvitationsAccept({ id, code: opts.code }, ctx);
      if (ctx.json) return ctx.out.json(m);
      const orgId = m.org?.id ?? m.org_id;
      const name = m.org?.name;
      ctx.out.success(
        `Joined ${name ? `${name} (${orgId})` : (orgId ?? 'the organization')}${m.role ? ` as ${m.role}` : ''}.`,
      );
      if (orgId) ctx.out.info(`Work in it with "breeze orgs switch ${orgId}".`);
    });
}
