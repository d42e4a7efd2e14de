import { Command } from 'commander';
import type { CommandHost } from '../host.js';
import { createWebhooksCreateCommand } from './create.js';
import { createWebhooksDeleteCommand } from './delete.js';
import { createWebhooksDeliveriesCommand } from './deliveries.js';
import { createWebhooksListCommand } from './list.js';
import { createWebhooksTestCommand } from './test.js';

export function createCommand(host: CommandHost): Command {
  return new Command('webhooks')
    .description('signed event deliveries of the current organization (owner or admin)')
    .addCommand(createWebhooksCreateCommand(host))
    .addCommand(createWebhooksListCommand(host))
    .addCommand(createWebhooksDeleteCommand(host))
    .addCommand(createWebhooksTestCommand(host))
    .addCommand(createWebhooksDeliveriesCommand(host))
    .addHelpText(
      'after',
      `
Examples:
  $ breeze webhooks create https://hooks.example.com/breeze --events key.created,key.leaked,key.expiring
  $ breeze webhooks list
  $ breeze webhooks test whk_01J...          sends a ping, says how the receiver answered
  $ breeze webhooks deliveries whk_01J...    status, attempts, last code, next attempt
  $ breeze webhooks delete whk_01J...`,
    );
}
