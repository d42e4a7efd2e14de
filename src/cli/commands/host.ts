import type { Command } from 'commander';
import type { CliContext } from '../context.js';

/** What main gives each command module: a way to build the CliContext for the invoked command. */
export interface CommandHost {
  /** builds (once) the context from the global options seen on `cmd` and its parents */
  context(cmd: Command): Promise<CliContext>;
  /** the whole program with every command loaded, to describe it (completion); it runs nothing */
  wholeProgram(): Promise<Command>;
}

/** A command file's default shape: it builds its commander `Command`; the action calls `run…(opts, ctx)`. */
export interface CommandModule {
  createCommand(host: CommandHost): Command;
}
