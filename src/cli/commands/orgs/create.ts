import { Command } from 'commander';
import type { OrgInfo } from '../../../client/platform.js';
import type { CliContext } from '../../context.js';
import { explainConflict, teamSession } from '../../teams.js';
import type { CommandHost } from '../host.js';
import { nameArg } from './switch.js';

/** Creates an organization (the caller is its owner; it comes with a `default` project). */
export async function runOrgsCreate(opts: { name: string }, ctx: CliContext): Promise<OrgInfo> {
  const t = await teamSession(ctx);
  return explainConflict(
    () => t.platform.createOrg(opts.name),
    `Cannot create organization "${opts.name}".`,
    'Choose another name.',
  );
}

export function createOrgsCreateCommand(host: CommandHost): Command {
  return new Command('create')
    .description('create an organization; you become its owner (it gets a "default" project)')
    .argument('<name>', 'its name', nameArg)
    .addHelpText(
      'after',
      '\nExamples:\n  $ breeze orgs create "Acme Inc"\n  $ breeze orgs create acme --json',
    )
    .action(async (name: string, _o, cmd: Command) => {
      const ctx = await host.context(cmd);
      const org = await runOrgsCreate({ name }, ctx);
      if (ctx.json) return ctx.out.json(org);
      ctx.out.data(org.id);
      ctx.out.success(
        `Created organization ${org.name} (${org.id}). Use it with "breeze orgs switch ${org.id}".`,
      );
    });
}
