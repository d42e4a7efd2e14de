import { Command } from 'commander';
import type { CommandHost } from '../host.js';
import { createMembersInviteCommand } from './invite.js';
import { createMembersListCommand } from './list.js';
import { createMembersRemoveCommand } from './remove.js';
import { createMembersRoleCommand } from './role.js';

export function createCommand(host: CommandHost): Command {
  return new Command('members')
    .description('members of the current organization: list, invite, change roles, remove')
    .addCommand(createMembersListCommand(host))
    .addCommand(createMembersInviteCommand(host))
    .addCommand(createMembersRoleCommand(host))
    .addCommand(createMembersRemoveCommand(host))
    .addHelpText(
      'after',
      `
Roles, widest first: owner, admin (read, write, admin, verify), member (read, write), viewer (read).
A key never does more than its creator's current role allows.

Examples:
  $ breeze members list
  $ breeze members invite dev@example.com --role member
  $ breeze members role dev@example.com viewer
  $ breeze members remove dev@example.com`,
    );
}
