import { Command, Option } from 'commander';
import type { CommandHost, CommandModule } from './commands/host.js';
import { ALIASES, COMMANDS, findCommandName, GLOBAL_VALUE_OPTIONS } from './commands/index.js';
import { type CliContext, createContext, type GlobalOptions, Interrupts } from './context.js';
import { InterruptedError } from './errors.js';
import { terminalBlock } from './ui/terminal-text.js';
import { cliVersion } from './version.js';

const ROOT_HELP = `
Examples:
  $ breeze login                      sign in through the browser and store a key
  $ breeze login --with-key < key.txt use an existing key
  $ breeze status                     who am I, which key, where is it stored
  $ eval "$(breeze env)"              export BREEZE_API_KEY for this shell
  $ breeze run -- npm test            run a command with the key in its environment
  $ breeze keys list                  list your keys
  $ breeze serve                      run the Breeze server in the foreground

Environment:
  BREEZE_SERVER, BREEZE_PROFILE, BREEZE_CONFIG_DIR, BREEZE_API_KEY, BREEZE_STORAGE (keychain|file),
  BREEZE_DEBUG=1 (like --verbose), NO_COLOR / FORCE_COLOR, HTTPS_PROXY / HTTP_PROXY / NO_PROXY.

Exit codes: 0 ok, 1 failure, 2 usage, 3 not authenticated, 4 forbidden or not found, 130 interrupted.
`;

/** The root program with the global options of CLI.md (valid before or after the command name). */
export function buildProgram(): Command {
  return new Command('breeze')
    .description('API keys for developers and CI, with the Breeze server built in.')
    .version(cliVersion(), '-V, --version', 'print the version')
    .addOption(new Option('--server <url>', 'server to talk to, or "embedded" (env BREEZE_SERVER)'))
    .addOption(new Option('--profile <name>', 'credential profile (env BREEZE_PROFILE; default "default")'))
    .option('--json', 'machine-readable output on stdout')
    .addOption(
      new Option('--config-dir <dir>', 'configuration directory (env BREEZE_CONFIG_DIR; default ~/.breeze)'),
    )
    .option('--no-color', 'no colours (also NO_COLOR)')
    .option('--verbose', 'HTTP trace on stderr, secrets redacted (also BREEZE_DEBUG=1)')
    .showSuggestionAfterError(true)
    .addHelpText('after', ROOT_HELP)
    .exitOverride()
    .configureOutput({
      // commander quotes argv in its errors: escape what a terminal would act on
      writeOut: (s) => process.stdout.write(terminalBlock(s)),
      writeErr: (s) => process.stderr.write(terminalBlock(s)),
    });
}

/**
 * `--help` / `-h` anywhere before `--`: the argv that shows the help of the command named, so
 * that nothing else on the line (e.g. an invalid option value) can turn it into an error. Null when
 * no help was asked for.
 */
export function helpArgv(program: Command, argv: readonly string[]): string[] | null {
  const end = argv.indexOf('--');
  const args = end === -1 ? argv : argv.slice(0, end);
  if (!args.includes('--help') && !args.includes('-h')) return null;
  const path: string[] = [];
  let cmd = program;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (GLOBAL_VALUE_OPTIONS.has(a)) {
      i++;
      continue;
    }
    if (a.startsWith('-')) continue;
    const sub = cmd.commands.find((c) => c.name() === a || c.aliases().includes(a));
    if (sub) {
      path.push(a);
      cmd = sub;
    }
  }
  return [...path, '--help'];
}

/** Adds the commands of `modules` to `program`, with their aliases. */
function addCommands(program: Command, modules: readonly CommandModule[], host: CommandHost): void {
  for (const mod of modules) {
    const cmd = mod.createCommand(host);
    for (const [alias, target] of Object.entries(ALIASES)) if (target === cmd.name()) cmd.alias(alias);
    program.addCommand(cmd);
  }
}

/** The whole program, every command loaded, for describing it (completion): it has no context. */
async function wholeProgram(): Promise<Command> {
  const program = buildProgram();
  const host: CommandHost = {
    context: () => Promise.reject(new Error('no context while describing commands')),
    wholeProgram,
  };
  addCommands(program, await Promise.all(Object.values(COMMANDS).map((load) => load())), host);
  return program;
}

/**
 * Parses argv and runs the command. Loads only the module of the named command (all of them for
 * root help or an unknown name). Resolves to the exit code; throws what the command threw.
 */
export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram();
  const name = findCommandName(argv);
  const names = name && COMMANDS[name] ? [name] : Object.keys(COMMANDS);
  const interrupts = new Interrupts();
  let ctx: CliContext | undefined;
  const host: CommandHost = {
    async context(cmd) {
      if (!ctx) {
        const globals = cmd.optsWithGlobals() as GlobalOptions;
        ctx = await createContext(globals, { interrupts });
      }
      return ctx;
    },
    wholeProgram,
  };
  addCommands(program, await Promise.all(names.map((n) => COMMANDS[n]!())), host);
  // Subcommands do not inherit these from addCommand: without them commander would process.exit itself.
  const inherit = (cmd: Command) => {
    for (const sub of cmd.commands) {
      sub.exitOverride().configureOutput(program.configureOutput()).showSuggestionAfterError(true);
      inherit(sub);
    }
  };
  inherit(program);
  // --no-color: make every colour decision below (ours, ora's, inquirer's) see it
  if (argv.includes('--no-color')) process.env.FORCE_COLOR = '0';
  interrupts.install();
  try {
    await Promise.race([
      program.parseAsync(helpArgv(program, argv) ?? argv, { from: 'user' }),
      interrupts.whenInterrupted(),
    ]);
    return ctx?.exitCode ?? 0;
  } catch (err) {
    if (interrupts.signal.aborted) throw new InterruptedError();
    throw err;
  } finally {
    await ctx?.close();
    interrupts.uninstall();
  }
}
