import { Command } from 'commander';
import type { CliContext } from '../../context.js';
import { currentOrg, explainConflict, findProject, teamSession } from '../../teams.js';
import type { CommandHost } from '../host.js';

/**
 * Deletes a project of the current organization, given by id or name (owner or admin). The server
 * refuses (409) while the project has keys.
 */
export async function runProjectsDelete(
  opts: { project: string },
  ctx: CliContext,
): Promise<{ id: string; name: string; deleted: true }> {
  const t = await teamSession(ctx);
  const org = await currentOrg(ctx, t);
  const project = await findProject(ctx, t, org, opts.project);
  await explainConflict(
    () => t.platform.deleteProject(project.id),
    project.name === 'default'
      ? `Project default (${project.id}) was not deleted: every organization keeps its default project.`
      : `Project ${project.name} (${project.id}) still has keys, so it was not deleted.`,
    project.name === 'default'
      ? 'Keys created without --project land in it.'
      : `Delete its keys first: "breeze keys list --all --project ${project.id}", then "breeze keys delete <key_id>".`,
  );
  return { id: project.id, name: project.name, deleted: true };
}

export function createProjectsDeleteCommand(host: CommandHost): Command {
  return new Command('delete')
    .alias('rm')
    .description('delete a project of the current organization (refused while it has keys)')
    .argument('<project>', 'a project id or name')
    .addHelpText(
      'after',
      '\nExamples:\n  $ breeze projects delete billing\n  $ breeze projects delete proj_01J... --json',
    )
    .action(async (project: string, _o, cmd: Command) => {
      const ctx = await host.context(cmd);
      const r = await runProjectsDelete({ project }, ctx);
      if (ctx.json) return ctx.out.json(r);
      ctx.out.success(`Deleted project ${r.name} (${r.id}).`);
    });
}
