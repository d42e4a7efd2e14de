/**
 * Entry point of `breeze`: a fast path for `--version`, then the commander program with only the
 * command that was asked for loaded. The only `process.exit` of the CLI lives here, and so does the
 * application of the error -> exit code mapping (`exitCodeOf` in errors.ts).
 */
import { describeError, EXIT, errorDocument, exitCodeOf } from './errors.js';
import { hasPrintedData } from './ui/output.js';
import { cliVersion } from './version.js';

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

/** `--json` among breeze's own arguments (not after `--`, where a child command's begin). */
function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

async function main(argv: string[]): Promise<void> {
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    process.stdout.write(`${cliVersion()}\n`);
    return exit(EXIT.OK);
  }
  const verbose = argv.includes('--verbose') || process.env.BREEZE_DEBUG === '1';
  try {
    const { tryFastPath } = await import('./fast.js');
    const fast = await tryFastPath(argv);
    if (fast !== undefined) return exit(fast);
    // Imported only now: `--version` must not pay for commander.
    const { runCli } = await import('./program.js');
    const code = await runCli(argv);
    exit(code);
  } catch (err) {
    const message = describeError(err, verbose);
    if (message) process.stderr.write(`${message}\n`);
    // --json: scripts parse stdout, so a failure is a JSON document there too (unless the command
    // already printed its document, e.g. `status --json` with `"valid": false`)
    if (wantsJson(argv) && exitCodeOf(err) !== EXIT.OK && !hasPrintedData(process.stdout)) {
      // exact JSON, with the characters a terminal acts on \u-escaped (a server's message may hold them)
      const { terminalJson } = await import('./ui/terminal-text.js');
      process.stdout.write(`${terminalJson(errorDocument(err))}\n`);
    }
    exit(exitCodeOf(err));
  }
}

await main(process.argv.slice(2));
