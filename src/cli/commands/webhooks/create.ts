import { Command, InvalidArgumentError } from 'commander';
import type { WebhookInfo } from '../../../client/webhooks.js';
import type { CliContext } from '../../context.js';
import { inCurrentOrg } from '../../teams.js';
import type { CommandHost } from '../host.js';
import { orgFor, webhookSession } from './common.js';

/** `--events a,b`: event names (or `*`), comma-separated; the server says which names it knows. */
export function eventsArg(value: string): string[] {
  const events = value
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  if (events.length === 0)
    throw new InvalidArgumentError('give at least one event, e.g. key.created,key.rotated (or "*").');
  if (events.some((e) => /[\p{Cc}\p{Cf}\s]/u.test(e)))
    throw new InvalidArgumentError('event names cannot hold spaces or control characters.');
  return [...new Set(events)];
}

export interface WebhooksCreateOptions {
  url: string;
  events: string[];
  org?: string;
}

/** Creates a webhook in the current organization (or `--org`); owner or admin. */
export async function runWebhooksCreate(opts: WebhooksCreateOptions, ctx: CliContext): Promise<WebhookInfo> {
  const s = await webhookSession(ctx);
  const org = await orgFor(ctx, s, opts.org);
  return inCurrentOrg(ctx, org, () => s.hooks.create(org.id, { url: opts.url, events: opts.events }));
}

export function createWebhooksCreateCommand(host: CommandHost): Command {
  return new Command('create')
    .description('send events of the current organization to a URL, signed (owner or admin)')
    .argument('<url>', 'the receiver: https, a public address')
    .requiredOption(
      '--events <names>',
      'comma-separated events (audit actions, key.expiring) or "*"',
      eventsArg,
    )
    .option('--org <org>', 'an organization id or name (default: the current one)')
    .addHelpText(
      'after',
      `
Examples:
  $ breeze webhooks create https://hooks.example.com/breeze --events key.created,key.rotated,key.leaked
  $ breeze webhooks create https://hooks.example.com/all --events '*' --json

Deliveries carry breeze-signature: t=<unix>,kid=<kid>,sig=<Ed25519 over "<t>.<body>">; verify it
against <server>/.well-known/jwks.json (verifyWebhook in @breeze/verify).`,
    )
    .action(async (url: string, o: { events: string[]; org?: string }, cmd: Command) => {
      const ctx = await host.context(cmd);
      const hook = await runWebhooksCreate({ url, events: o.events, org: o.org }, ctx);
      if (ctx.json) return ctx.out.json(hook);
      ctx.out.data(hook.id);
      ctx.out.success(`Created webhook ${hook.id}: ${hook.events.join(', ')} -> ${hook.url}`);
      ctx.out.info(`Try it: breeze webhooks test ${hook.id}`);
    });
}
