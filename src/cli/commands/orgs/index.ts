import { Command } from 'commander';
import type { CommandHost } from '../host.js';
import { createOrgsCreateCommand } from './create.js';
import { createOrgsListCommand } from './list.js';
import { createOrgsSwitchCommand } from './switch.js';

export function createCommand(host: CommandHost): Command {
  return new Command('orgs')
    .description('organizations you belong to; switch the one projects and members act on')
    .addCommand(createOrgsListCommand(host))
    .addCommand(createOrgsCreateCommand(host))
    .addCommand(createOrgsSwitchCommand(host))
    .addHelpText(
      'after',
      `
Examples:
  $ breeze orgs list
  $ breeze orgs create "Acme Inc"
  $ breeze orgs switch "Acme Inc"          or an id: breeze orgs switch org_01J...`,
    );
}
