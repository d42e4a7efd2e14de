import { Command } from 'commander';
import type { CommandHost } from '../host.js';
import { createCreateCommand } from './create.js';
import { createDeleteCommand } from './delete.js';
import { createListCommand } from './list.js';
import { createRotateCommand } from './rotate.js';
import { createToggleCommand } from './toggle.js';
import { createUsageCommand } from './usage.js';

export function createCommand(host: CommandHost): Command {
  return new Command('keys')
    .description('list, create, rotate, disable, enable and delete API keys; their usage')
    .addCommand(createListCommand(host))
    .addCommand(createCreateCommand(host))
    .addCommand(createRotateCommand(host))
    .addCommand(createToggleCommand(host, 'disable'))
    .addCommand(createToggleCommand(host, 'enable'))
    .addCommand(createDeleteCommand(host))
    .addCommand(createUsageCommand(host))
    .addHelpText(
      'after',
      `
Examples:
  $ breeze keys list --all
  $ breeze keys create --name ci --scopes read,write --expires-in 30d
  $ BREEZE_API_KEY=$OLD breeze keys rotate --self --grace 0 --json
  $ breeze keys delete key_01J... --yes`,
    );
}
