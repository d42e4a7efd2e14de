import { Command, Option } from 'commander';
import type { CliContext } from '../context.js';
import { credentialEnv, ENV_FORMATS, type EnvFormat, formatEnv, formatEnvLines } from '../env-vars.js';
import type { CommandHost } from './host.js';

/** The credential variables, rendered for a shell (or JSON). No network. */
export async function runEnv(
  opts: { format: EnvFormat },
  ctx: CliContext,
): Promise<{ vars: Record<string, string>; text: string }> {
  const vars = await credentialEnv(ctx);
  return { vars, text: formatEnv(vars, opts.format) };
}

export function createCommand(host: CommandHost): Command {
  return new Command('env')
    .description('print BREEZE_API_KEY, BREEZE_API_KEY_ID and BREEZE_SERVER for a shell')
    .addOption(new Option('--format <format>', 'output format').choices([...ENV_FORMATS]).default('sh'))
    .addHelpText(
      'after',
      `
Examples:
  $ eval "$(breeze env)"                              bash, zsh, sh
  $ breeze env --format fish | source                 fish
  PS> breeze env --format powershell | Invoke-Expression
  $ breeze env --format dotenv > .env
  $ breeze env --format json`,
    )
    .action(async (opts: { format: EnvFormat }, cmd: Command) => {
      const ctx = await host.context(cmd);
      // --json is the same as --format json
      const { vars } = await runEnv({ format: ctx.json ? 'json' : opts.format }, ctx);
      ctx.out.data(formatEnvLines(vars, ctx.json ? 'json' : opts.format));
    });
}
