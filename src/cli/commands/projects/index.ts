import { Command } from 'commander';
import type { CommandHost } from '../host.js';
import { createProjectsCreateCommand } from './create.js';
import { createProjectsDeleteCommand } from './delete.js';
import { createProjectsListCommand } from './list.js';

export function createCommand(host: CommandHost): Command {
  return new Command('projects')
    .description('projects of the current organization (see "breeze orgs switch")')
    .addCommand(createProjectsListCommand(host))
    .addCommand(createProjectsCreateCommand(host))
    .addCommand(createProjectsDeleteCommand(host))
    .addHelpText(
      'after',
      `
Examples:
  $ breeze projects list
  $ breeze projects create billing
  $ breeze keys create --name ci --project billing
  $ breeze projects delete billing          refused while it has keys`,
    );
}
