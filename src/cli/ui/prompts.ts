import { UsageError } from '../errors.js';
import { terminalLine } from './terminal-text.js';

/** Questions to the user. Each names the flag that answers it in a non-interactive run. */
export interface Prompts {
  /** true when stdin and stderr are TTYs and CI is unset */
  readonly interactive: boolean;
  confirm(message: string, opts: { flag: string; default?: boolean }): Promise<boolean>;
  input(
    message: string,
    opts: { flag: string; default?: string; validate?: (v: string) => true | string },
  ): Promise<string>;
  password(message: string, opts: { flag: string }): Promise<string>;
}

/** Interactive only when stdin and stderr are TTYs and `CI` is unset (CLI.md). */
export function isInteractive(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY && !env.CI);
}

/**
 * Prompts over @inquirer/prompts (imported on first use), drawn on stderr, cancelled by `signal`.
 * Non-interactive: every question throws the exit-2 UsageError naming the flag to pass.
 */
export function createPrompts(interactive: boolean, signal: AbortSignal): Prompts {
  // the question is quoted whole: gluing text to it broke sentences ("...restored.: cannot ask")
  const needFlag = (message: string, flag: string) =>
    new UsageError(`Cannot ask in a non-interactive run: "${message.trim()}"`, {
      hint: `Pass ${flag}.`,
    });
  const ctx = { input: process.stdin, output: process.stderr, signal };
  return {
    interactive,
    async confirm(message, { flag, default: def }) {
      if (!interactive) throw needFlag(message, flag);
      const { confirm } = await import('@inquirer/prompts');
      return confirm({ message: terminalLine(message), default: def ?? false }, ctx);
    },
    async input(message, { flag, default: def, validate }) {
      if (!interactive) throw needFlag(message, flag);
      const { input } = await import('@inquirer/prompts');
      return input({ message: terminalLine(message), default: def, validate }, ctx);
    },
    async password(message, { flag }) {
      if (!interactive) throw needFlag(message, flag);
      const { password } = await import('@inquirer/prompts');
      return password({ message: terminalLine(message), mask: true }, ctx);
    },
  };
}
