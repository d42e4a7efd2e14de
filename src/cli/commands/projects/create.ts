import { Command } from 'commander';
import type { ProjectInfo } from '../../../client/platform.js';
import type { CliContext } from '../../context.js';
import { currentOrg, explainConflict, inCurrentOrg, teamSession } from '../../teams.js';
import type { CommandHost } from '../host.js';
import { nameArg } from '../orgs/switch.js';

/** Creates a project in the current organization (owner or admin). */
export async function runProjectsCreate(opts: { name: string }, ctx: CliContext): Promise<ProjectInfo> {
  const t = await teamSession(ctx);
  const org = await currentOrg(ctx, t);
  return explainConflict(
    () => inCurrentOrg(ctx, org, () => t.platform.createProject(org.id, opts.name)),
    `Cannot create project "${opts.name}": it conflicts with an existing one.`,
    'Choose another name (see "breeze projects list").',
  );
}

export function createProjectsCreateCommand(host: CommandHost): Command {
  return new Command('create')
    .description('create a project in the current organization (owner or admin)')
    .argument('<name>', 'its name', nameArg)
    .addHelpText(
      'after',
      '\nExamples:\n  $ breeze projects create billing\n  $ breeze projects create billing --json',
    )
    .action(async (name: string, _o, cmd: Command) => {
      const ctx = await host.context(cmd);
      const project = await runProjectsCreate({ name }, ctx);
      if (ctx.json) return ctx.out.json(project);
      ctx.out.data(project.id);
      ctx.out.success(`Created project ${project.name} (${project.id}).`);
    });
}
