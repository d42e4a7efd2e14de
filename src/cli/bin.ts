/**
 * The CLI's first module. `npm run build` bundles it with everything it imports statically into one
 * CommonJS file, dist/cli/bin.cjs, which bin/breeze.js requires (scripts/bundle.mjs): no ESM loader
 * and one file to read, so `breeze token`, `breeze env` and `breeze --version` start about as fast as
 * `node -e 0`. Anything else loads the full program (main.ts; bundled as dist/cli/main.cjs with a
 * chunk per command, commander inside).
 *
 * Heavy built-ins stay out of this path: modules it reaches load node:crypto, node:zlib,
 * node:child_process and node:os on use (process.getBuiltinModule), not on import. So does
 * process.stdout: the fast path writes to file descriptors 1 and 2 directly (ui/output.ts
 * `fdWriter`); building the stdout stream (node:stream, and net + tty for a pipe or a terminal)
 * costs several milliseconds, and only the full program needs it.
 */
import { reportFailure } from './errors.js';
import { tryFastPath } from './fast.js';
import { createOutput, fdWriter } from './ui/output.js';
import { cliVersion } from './version.js';

/** Writing to stdout failed for another reason than a closed pipe: say so (on fd 2) and exit 1. */
function stdoutFailed(err: NodeJS.ErrnoException, writeErr: (text: string) => void): never {
  writeErr(`Error: cannot write to stdout: ${err.code ?? err.message}\n`);
  process.exit(1);
}

/** A closed pipe (`breeze token | head -c 0`) is the reader's choice, not an error to report. */
function guardStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') return;
    stdoutFailed(err, (text) => process.stderr.write(text));
  });
}

export async function run(argv: string[]): Promise<void> {
  const stderr = fdWriter(2);
  const stdout = fdWriter(1, (err) => stdoutFailed(err, (text) => stderr.write(text)));
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    stdout.write(`${cliVersion()}\n`);
    return;
  }
  let code: number | undefined;
  try {
    code = await tryFastPath(argv, { output: createOutput({ stdout, stderr }) });
  } catch (err) {
    code = reportFailure(err, argv, process.env, { stdout, stderr });
  }
  if (code === undefined) {
    // the full program; it exits by itself
    guardStdout();
    const { main } = await import('./main.js');
    await main(argv);
    return;
  }
  // Leave by running out of work rather than process.exit: every write above was synchronous
  // (fdWriter), so nothing is left to drain, and nothing else is pending.
  process.exitCode = code;
}
