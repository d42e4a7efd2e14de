import { Command } from 'commander';
import type { MembershipInfo, OrgInfo } from '../../../client/platform.js';
import type { CliContext } from '../../context.js';
import { UsageError } from '../../errors.js';
import { explainConflict, teamSession } from '../../teams.js';
import type { CommandHost } from '../host.js';

/**
 * Accepts invitation `id` with the mailed code, as the logged-in user (who must own the invited
 * email). A wrong code or another user's invitation is a 404 (exit 4). `joined`: the organization
 * that appeared in `GET /v1/orgs` (the answer itself is the membership, without the org).
 */
export async function runInvitationsAccept(
  opts: { id: string; code: string },
  ctx: CliContext,
): Promise<{ membership: MembershipInfo; joined: OrgInfo | null }> {
  // as mailed: 8 of 0-9A-Z; people type it in lower case or with a space or dash in the middle
  const code = opts.code.replace(/[\s-]/g, '').toUpperCase();
  if (code === '')
    throw new UsageError('The code is empty.', {
      hint: 'Pass the code from the invitation email: --code <code>.',
    });
  const t = await teamSession(ctx);
  const before = await t.platform.listOrgs().catch(() => null);
  const membership = await explainConflict(
    () => t.platform.acceptInvitation(opts.id.trim(), code),
    'This invitation cannot be accepted.',
    'You may be a member of that organization already: see "breeze orgs list".',
  );
  let joined: OrgInfo | null = null;
  if (membership.org?.id ?? membership.org_id) {
    const id = membership.org?.id ?? membership.org_id;
    joined = (await t.platform.listOrgs().catch(() => null))?.data.find((o) => o.id === id) ?? null;
  } else if (before) {
    const known = new Set(before.data.map((o) => o.id));
    const added = (await t.platform.listOrgs().catch(() => null))?.data.filter((o) => !known.has(o.id)) ?? [];
    joined = added.length === 1 ? added[0]! : null;
  }
  return { membership, joined };
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
      const { membership, joined } = await runInvitationsAccept({ id, code: opts.code }, ctx);
      if (ctx.json) return ctx.out.json(membership);
      const role = membership.role ?? joined?.role;
      ctx.out.success(
        `Joined ${joined ? `${joined.name} (${joined.id})` : 'the organization'}${role ? ` as ${role}` : ''}.`,
      );
      if (joined) ctx.out.info(`Work in it with "breeze orgs switch ${joined.id}".`);
    });
}
