/**
 * The full program: bin.ts (the bundled fast entry for `token`, `env` and `--version`) imports this
 * for everything else. Only the module of the command that was asked for is loaded (program.ts). The
 * only `process.exit` of the CLI lives here; failures are reported by `reportFailure` (errors.ts),
 * which both entries share.
 */
import { reportFailure } from './errors.js';

function exit(code: number): void {
  // Let a pipe drain our output before leaving; never hang on it.
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
  setTimeout(() => process.exit(code), 2000).unref();
}

/** Runs the program on `argv` and exits with its code (bin.ts calls it when the fast path declines). */
export async function main(argv: string[]): Promise<void> {
  try {
    const { runCli } = await import('./program.js');
    exit(await runCli(argv));
  } catch (err) {
    exit(reportFailure(err, argv));
  }
}
