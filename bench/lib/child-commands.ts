import type { ChildProcess } from 'node:child_process';

/**
 * Talks to a bench child that switches something while it runs (bench/child-commands.mjs on its
 * side): sends one command line to its stdin and resolves when the child answers with a line "ok"
 * on stdout (5 s at most). Other stdout lines (the child's first JSON line) are left alone.
 */
export function childCommands(proc: ChildProcess, what: string): (command: string) => Promise<void> {
  const waiting: (() => void)[] = [];
  let partial = '';
  proc.stdout?.on('data', (d: Buffer | string) => {
    partial += d.toString();
    for (let nl = partial.indexOf('\n'); nl !== -1; nl = partial.indexOf('\n')) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (line === 'ok') waiting.shift()?.();
    }
  });
  return (command) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what} did not answer "${command}"`)), 5000);
      waiting.push(() => {
        clearTimeout(timer);
        resolve();
      });
      proc.stdin?.write(`${command}\n`);
    });
}
