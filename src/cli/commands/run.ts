import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { Command } from 'commander';
import type { CliContext } from '../context.js';
import { credentialEnv } from '../env-vars.js';
import { UsageError, UserError } from '../errors.js';
import { warnIfExpiring } from '../expiry.js';
import type { CommandHost } from './host.js';

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/**
 * Runs `argv` with the credential variables in its environment, stdio inherited, signals passed on.
 * Resolves with the exit code to pass on (128 + signal number when it was killed by a signal).
 */
export async function runRun(
  opts: { argv: string[]; vars?: Record<string, string>; mask?: boolean },
  ctx: CliContext,
): Promise<number> {
  const [file, ...args] = opts.argv;
  if (!file) throw new UsageError('No command given.', { hint: 'Usage: breeze run -- <cmd> [args...]' });
  // `vars`: given by `run --oidc` (a short-lived key); else the profile's credential
  let vars = opts.vars;
  if (!vars) {
    const session = await ctx.session();
    vars = await credentialEnv(ctx, session);
    warnIfExpiring(ctx, session);
  }
  const { maskByDefault, secretsOf } = await import('../run/secrets.js');
  if (opts.mask ?? maskByDefault(ctx.env)) {
    const { runMasked } = await import('../run/masked-run.js');
    return runMasked(file, args, { ...ctx.env, ...vars }, secretsOf(vars), ctx);
  }
  const child = spawn(file, args, { stdio: 'inherit', env: { ...ctx.env, ...vars } });
  const extra = FORWARDED.filter((s) => s !== 'SIGINT' && s !== 'SIGTERM');
  // A Ctrl-C or Ctrl-\ typed at a terminal already reaches the child (same foreground process
  // group); passing it on again would make it a double press, which many tools take as "quit now".
  const fromTerminal = (sig: NodeJS.Signals) =>
    (sig === 'SIGINT' || sig === 'SIGQUIT') && process.stdin.isTTY;
  const forward = (sig: NodeJS.Signals) => {
    if (fromTerminal(sig)) return;
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  // SIGINT/SIGTERM come through the context (they would otherwise abort breeze itself)
  ctx.onSignal(forward);
  for (const s of extra) process.on(s, forward);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') reject(new UserError(`Command not found: ${file}`, { exitCode: 127 }));
        else if (err.code === 'EACCES')
          reject(new UserError(`Permission denied: ${file}`, { exitCode: 126 }));
        else reject(err);
      });
      child.once('exit', (code, signal) => {
        if (signal) resolve(128 + (constants.signals[signal] ?? 0));
        else resolve(code ?? 0);
      });
    });
  } finally {
    ctx.onSignal(null);
    for (const s of extra) process.off(s, forward);
  }
}

export function createCommand(host: CommandHost): Command {
  return new Command('run')
    .description('run a command with BREEZE_API_KEY (and friends) in its environment')
    .argument('<cmd...>', 'the command and its arguments (after --)')
    .option(
      '--oidc',
      "CI: use a short-lived key for the job's OIDC token (stored nowhere, deleted afterwards)",
    )
    .option('--audience <aud>', '--oidc: audience asked of GitHub Actions (default: the server URL)')
    .option('--org <org_id>', '--oidc: the organization whose trust applies')
    .option('--oidc-token-file <file>', '--oidc: read the OIDC token from this file')
    .option(
      '--mask',
      'replace the injected secrets (and their base64/URL-encoded forms) in its output (default when CI is set)',
    )
    .option('--no-mask', 'do not mask its output, also in CI')
    .addHelpText(
      'after',
      `
Examples:
  $ breeze run -- npm test
  $ breeze run -- sh -c 'curl -H "xi-api-key: $BREEZE_API_KEY" "$BREEZE_SERVER/v1/me"'
  $ breeze --profile ci run -- ./deploy.sh --prod
  $ breeze --server https://breeze.example.com run --oidc -- ./deploy.sh     in CI, no stored secret
  $ breeze run --mask -- ./deploy.sh          prints [BREEZE_API_KEY] where the key would show`,
    )
    .action(async (argv: string[], o: Record<string, string | boolean | undefined>, cmd: Command) => {
      const ctx = await host.context(cmd);
      // commander sets `mask` only when one of the flags is given (no default)
      const mask = o.mask as boolean | undefined;
      if (o.oidc) {
        const { runWithOidc } = await import('../login/oidc.js');
        const oidc = { audience: o.audience, org: o.org, tokenFile: o.oidcTokenFile } as Record<
          string,
          string
        >;
        ctx.exitCode = await runWithOidc(oidc, ctx, (vars) => runRun({ argv, vars, mask }, ctx));
        return;
      }
      ctx.exitCode = await runRun({ argv, mask }, ctx);
    });
}
