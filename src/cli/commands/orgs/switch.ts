import { Command, InvalidArgumentError } from 'commander';
import type { OrgInfo } from '../../../client/platform.js';
import type { CliContext } from '../../context.js';
import { UserError } from '../../errors.js';
import { findOrg, teamSession } from '../../teams.js';
import type { CommandHost } from '../host.js';

/** commander parser for names of organizations and projects: not empty, no control characters. */
export function nameArg(value: string): string {
  const v = value.trim();
  if (v === '') throw new InvalidArgumentError('a name cannot be empty.');
  if (v.length > 200) throw new InvalidArgumentError('a name has at most 200 characters.');
  if (/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(v))
    throw new InvalidArgumentError('a name cannot hold control characters.');
  return v;
}

/**
 * Makes `org` (an id or a name from `GET /v1/orgs`) the profile's current organization: config.json
 * `org_id`. Needs a stored login for this server (BREEZE_API_KEY alone has no profile to remember it).
 */
export async function runOrgsSwitch(opts: { org: string }, ctx: CliContext): Promise<OrgInfo> {
  const t = await teamSession(ctx);
  const server = ctx.server();
  const saved = t.session.saved;
  if (t.session.source === 'env' || !saved) {
    throw new UserError(
      'There is no stored login to remember the organization in (BREEZE_API_KEY is in use).',
      {
        hint: `Log in with "breeze login${ctx.profile !== 'default' ? ` --profile ${ctx.profile}` : ''}", or unset BREEZE_API_KEY.`,
      },
    );
  }
  const org = await findOrg(t, opts.org);
  await ctx.config.update((data) => {
    const p = data.profiles[ctx.profile];
    // another process may have logged this profile in elsewhere meanwhile: only the same login switches
    if (!p || p.server !== server || p.key_id !== saved.key_id) {
      throw new UserError(`Profile "${ctx.profile}" changed while switching; nothing was saved.`, {
        hint: 'Run the command again.',
      });
    }
    p.org_id = org.id;
  });
  return org;
}

export function createOrgsSwitchCommand(host: CommandHost): Command {
  return new Command('switch')
    .description('set the organization that projects, members and keys --project act on')
    .argument('<org>', 'an organization id or name (see "breeze orgs list")')
    .addHelpText('after', '\nExamples:\n  $ breeze orgs switch "Acme Inc"\n  $ breeze orgs switch org_01J...')
    .action(async (org: string, _o, cmd: Command) => {
      const ctx = await host.context(cmd);
      const chosen = await runOrgsSwitch({ org }, ctx);
      if (ctx.json) return ctx.out.json(chosen);
      ctx.out.success(`Now using organization ${chosen.name} (${chosen.id}), role ${chosen.role}.`);
    });
}
