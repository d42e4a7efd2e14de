import { Command } from 'commander';
import type { CommandHost } from '../host.js';
import { createInvitationsAcceptCommand } from './accept.js';

export function createCommand(host: CommandHost): Command {
  return new Command('invitations')
    .description('accept an invitation to an organization')
    .addCommand(createInvitationsAcceptCommand(host))
    .addHelpText('after', '\nExample:\n  $ breeze invitations accept inv_01J... --code 7K2M9Q4X');
}
