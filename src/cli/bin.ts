/**
 * The CLI's first module. `npm run build` bundles it with everything it imports statically into one
 * CommonJS file, dist/cli/bin.cjs, which bin/breeze.js requires (scripts/bundle.mjs): no ESM loader
 * and one file to read, so `breeze token`, `breeze env` and `breeze --version` start about as fast as
 * `node -e 0`. Anything else imports dist/cli/main.js (ESM, commander, one module per command).
 *
 * Heavy built-ins stay out of this path: modules it reaches load node:crypto, node:zlib,
 * node:child_process and node:os on use (process.getBuiltinModule), not on import.
 */
import { reportFailure } from './errors.js';
import { tryFastPath } from './fast.js';
import { cliVersion } from './version.js';

/** A closed pipe (`breeze token | head -c 0`) is the reader's choice, not an error to report. */
function guardStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') return;
    process.stderr.write(`Error: cannot write to stdout: ${err.code ?? err.message}\n`);
    process.exit(1);
  });
}

export async function run(argv: string[]): Promise<void> {
  guardStdout();
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    process.stdout.write(`${cliVersion()}\n`);
    return;
  }
  let code: number | undefined;
  try {
    code = await tryFastPath(argv);
  } catch (err) {
    code = reportFailure(err, argv);
  }
  if (code === undefined) {
    // the full program; it exits by itself
    await import('./main.js');
    return;
  }
  // Leave by running out of work rather than process.exit: stdout and stderr writes to pipes and
  // files are synchronous on POSIX, so nothing is left to drain, and nothing else is pending.
  process.exitCode = code;
}
