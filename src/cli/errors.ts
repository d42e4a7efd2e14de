/**
 * Errors commands throw, and the one mapping from any error to a message and an exit code
 * (`exitCodeOf`, `describeError`, `reportFailure`), applied only by the entries (`bin.ts`, `main.ts`). Cheap to import (no dependencies).
 */
import { ApiError, NetworkError } from '../client/errors.js';
import { CorruptFileError } from '../credentials/atomic-file.js';
import { hasPrintedData, MAX_MESSAGE_LENGTH, type OutputStream } from './ui/output.js';
import { clampText, terminalJson, terminalLine } from './ui/terminal-text.js';

export const EXIT = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  NOT_AUTHENTICATED: 3,
  FORBIDDEN: 4,
  INTERRUPTED: 130,
} as const;

/** Something the user can fix; `hint` says how. Exit code 1 unless given. */
export class UserError extends Error {
  override name = 'UserError';
  readonly hint?: string;
  readonly exitCode: number;
  /** the `code` of `--json` error output; default: the server's code of an ApiError cause, else by exit code */
  readonly code?: string;
  constructor(
    message: string,
    opts: { hint?: string; exitCode?: number; cause?: unknown; code?: string } = {},
  ) {
    super(message, { cause: opts.cause });
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? EXIT.FAILURE;
    this.code = opts.code;
  }
}

/** Bad flags or arguments, or a prompt needed in a non-interactive run (exit 2). */
export class UsageError extends UserError {
  override name = 'UsageError';
  constructor(message: string, opts: { hint?: string } = {}) {
    super(message, { ...opts, exitCode: EXIT.USAGE });
  }
}

/** No credential, or the server refused it (exit 3). */
export class NotAuthenticatedError extends UserError {
  override name = 'NotAuthenticatedError';
  constructor(message = 'Not logged in.', opts: { hint?: string; cause?: unknown } = {}) {
    super(message, {
      hint: opts.hint ?? 'Run "breeze login".',
      exitCode: EXIT.NOT_AUTHENTICATED,
      cause: opts.cause,
    });
  }
}

/** Ctrl-C (exit 130). */
export class InterruptedError extends UserError {
  override name = 'InterruptedError';
  constructor(message = 'Interrupted.') {
    super(message, { exitCode: EXIT.INTERRUPTED });
  }
}

/**
 * Exit codes of CLI.md: 1 failure, 2 usage, 3 not authenticated (incl. a 401), 4 forbidden / not
 * found (403, 404), 130 interrupted.
 */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UserError) return err.exitCode;
  if (err instanceof ApiError) {
    if (err.status === 401) return EXIT.NOT_AUTHENTICATED;
    if (err.status === 403 || err.status === 404) return EXIT.FORBIDDEN;
    if (err.status === 400 && err.code === 'VALIDATION_FAILED') return EXIT.USAGE;
    return EXIT.FAILURE;
  }
  if (err instanceof NetworkError) return EXIT.FAILURE;
  const e = err as { code?: unknown; exitCode?: unknown; name?: unknown };
  if (typeof e?.code === 'string' && e.code.startsWith('commander.')) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return EXIT.OK;
    // `breeze help`, `breeze help keys`, `breeze keys help create` (exitCode 0), unlike the help
    // commander shows for a missing subcommand (`breeze keys`, exitCode 1)
    if (e.code === 'commander.help' && e.exitCode === 0) return EXIT.OK;
    return EXIT.USAGE;
  }
  // @inquirer/prompts on Ctrl-C, or an abort triggered by our SIGINT handler
  if (e?.name === 'ExitPromptError' || e?.name === 'AbortError' || e?.name === 'AbortPromptError') {
    return EXIT.INTERRUPTED;
  }
  return EXIT.FAILURE;
}

/**
 * One human message on stderr for an error (commander has already printed its own). Each part is one
 * terminal line (ui/terminal-text.ts): a message from a server or an outside value cannot drive the
 * terminal or add a line of its own.
 */
export function describeError(err: unknown, verbose: boolean): string | null {
  const e = err as { code?: unknown; name?: unknown };
  if (typeof e?.code === 'string' && e.code.startsWith('commander.')) return null;
  const lines = (...parts: Array<string | undefined>) =>
    parts
      .filter((p): p is string => p !== undefined && p !== '')
      .map((p) => terminalLine(clampText(p, MAX_MESSAGE_LENGTH)))
      .join('\n');
  if (exitCodeOf(err) === EXIT.INTERRUPTED) return 'Interrupted.';
  if (err instanceof UserError) return lines(`Error: ${err.message}`, err.hint);
  if (err instanceof ApiError) {
    const hint =
      err.status === 401
        ? 'The server refused the credential. Run "breeze login" (or check BREEZE_API_KEY).'
        : err.status === 429 && err.retryAfter !== undefined
          ? `Rate limited: try again in ${err.retryAfter}s.`
          : undefined;
    const rid = err.requestId ? ` (request ${err.requestId})` : '';
    return lines(`Error: ${err.message} [${err.code}]${rid}`, ...detailLines(err.details), hint);
  }
  if (err instanceof CorruptFileError)
    return lines(
      `Error: ${err.message}`,
      'Fix or delete the file (nothing was changed), then run the command again.',
    );
  if (err instanceof NetworkError)
    return lines(
      `Error: ${err.message}`,
      'Check the server URL (--server / BREEZE_SERVER) and your network or proxy settings.',
    );
  const message = err instanceof Error ? err.message : String(err);
  if (verbose && err instanceof Error && err.stack) {
    // the stack's own first lines repeat the message: print it once, then the frames
    const frames = err.stack.split('\n').filter((l) => /^\s+at /.test(l));
    return lines(`Error: ${message}`, ...frames);
  }
  return lines(`Error: ${message}`);
}

/**
 * The server's `details` of a validation error (`[{field, message}]`), one line each, so
 * "Invalid request body." says which field; at most 5, anything else in `details` is left out.
 */
function detailLines(details: unknown): string[] {
  if (!Array.isArray(details)) return [];
  const out: string[] = [];
  for (const d of details) {
    const { field, message } = (d ?? {}) as { field?: unknown; message?: unknown };
    if (typeof message !== 'string') continue;
    const text = typeof field === 'string' && field ? `${field}: ${message}` : message;
    out.push(`  ${text.slice(0, 200)}`);
  }
  return out.length > 5 ? [...out.slice(0, 5), `  (${out.length - 5} more)`] : out;
}

/** The `code` of a local (not server) error in `--json` output, by exit code. */
const LOCAL_CODES: Record<number, string> = {
  [EXIT.FAILURE]: 'FAILED',
  [EXIT.USAGE]: 'USAGE',
  [EXIT.NOT_AUTHENTICATED]: 'NOT_AUTHENTICATED',
  [EXIT.FORBIDDEN]: 'FORBIDDEN',
  [EXIT.INTERRUPTED]: 'INTERRUPTED',
  126: 'NOT_EXECUTABLE',
  127: 'COMMAND_NOT_FOUND',
  143: 'INTERRUPTED',
};

/** What `--json` prints on stdout for a failed command (the message is the one of stderr). */
export interface ErrorDocument {
  error: {
    code: string;
    message: string;
    hint?: string;
    /** HTTP status, for an error the server answered */
    status?: number;
    request_id?: string | null;
    details?: unknown;
    retry_after?: number;
    exit_code: number;
  };
}

/**
 * The error as one JSON document, so scripts using `--json` can parse failures too: the server's
 * `code` and `request_id` for API errors, a local code (`USAGE`, `NOT_AUTHENTICATED`, ...) otherwise.
 */
export function errorDocument(err: unknown): ErrorDocument {
  const exitCode = exitCodeOf(err);
  const api = err instanceof ApiError ? err : (err as { cause?: unknown })?.cause;
  const fromServer = api instanceof ApiError ? api : undefined;
  const e = err as { code?: unknown; exitCode?: unknown };
  let code: string;
  let message: string;
  let hint: string | undefined;
  if (typeof e?.code === 'string' && e.code.startsWith('commander.')) {
    code = 'USAGE';
    message =
      e.code === 'commander.help'
        ? 'A command is missing (see the help on stderr).'
        : String((err as Error).message).replace(/^error:\s*/i, '');
  } else if (exitCode === EXIT.INTERRUPTED) {
    code = 'INTERRUPTED';
    message = 'Interrupted.';
  } else if (err instanceof UserError) {
    code =
      err.code ??
      (fromServer && err.cause === fromServer ? fromServer.code : undefined) ??
      // "could not delete the key on the server: cannot reach ..." is a network error too
      (err.cause instanceof NetworkError ? err.cause.code : undefined) ??
      LOCAL_CODES[exitCode] ??
      'FAILED';
    message = err.message;
    hint = err.hint;
  } else if (err instanceof ApiError) {
    code = err.code;
    message = err.message;
  } else if (err instanceof NetworkError) {
    code = err.code;
    message = err.message;
  } else if (err instanceof CorruptFileError) {
    code = 'CORRUPT_FILE';
    message = err.message;
  } else {
    code = LOCAL_CODES[exitCode] ?? 'FAILED';
    message = err instanceof Error ? err.message : String(err);
  }
  const doc: ErrorDocument = { error: { code, message, exit_code: exitCode } };
  if (hint) doc.error.hint = hint;
  if (fromServer) {
    doc.error.status = fromServer.status;
    doc.error.request_id = fromServer.requestId;
    if (fromServer.details !== undefined) doc.error.details = fromServer.details;
    if (fromServer.retryAfter !== undefined) doc.error.retry_after = fromServer.retryAfter;
  }
  return doc;
}

/** `--json` among breeze's own arguments (not after `--`, where a child command's begin). */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/**
 * Reports a failed run — the one place both entries (the fast path in bin.ts and the full program in
 * main.ts) do it: the message on stderr, and with `--json` the error document on stdout too (unless
 * the command already printed its own document, e.g. `status --json` with `"valid": false`), as
 * exact JSON with the characters a terminal acts on \u-escaped. `streams`: where the command's
 * Output wrote (the fast entry's fd writers). Returns the exit code.
 */
export function reportFailure(
  err: unknown,
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  streams: { stdout: OutputStream; stderr: OutputStream } = process,
): number {
  const verbose = argv.includes('--verbose') || env.BREEZE_DEBUG === '1';
  const message = describeError(err, verbose);
  if (message) streams.stderr.write(`${message}\n`);
  const code = exitCodeOf(err);
  if (wantsJson(argv) && code !== EXIT.OK && !hasPrintedData(streams.stdout)) {
    streams.stdout.write(`${terminalJson(errorDocument(err))}\n`);
  }
  return code;
}
