import { Command } from 'commander';
import type { CliContext } from '../context.js';
import { usableKey } from '../env-vars.js';
import { warnIfExpiring } from '../expiry.js';
import type { CommandHost } from './host.js';

/** The key in use (BREEZE_API_KEY, else the profile's stored key), without touching the network. */
export async function runToken(_opts: Record<string, never>, ctx: CliContext): Promise<{ api_key: string }> {
  const session = await ctx.session();
  warnIfExpiring(ctx, session);
  return { api_key: usableKey(session) };
}

export function createCommand(host: CommandHost): Command {
  return new Command('token')
    .description('print the API key alone on stdout')
    .addHelpText(
      'after',
      `
Examples:
  $ curl -H "xi-api-key: $(breeze token)" http://127.0.0.1:4455/v1/me
  $ breeze token --profile ci | docker login --password-stdin ...`,
    )
    .action(async (_o, cmd: Command) => {
      const ctx = await host.context(cmd);
      const { api_key } = await runToken({}, ctx);
      if (ctx.json) ctx.out.json({ api_key });
      else ctx.out.data(api_key);
    });
}
