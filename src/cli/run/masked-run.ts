/**
 * `breeze run --mask`: the child's stdout and stderr pass through a `Masker` each.
 *
 * - stdout not a terminal (CI logs, pipes): the child gets pipes for stdout and stderr, each masked
 *   and written to ours; stdin is inherited.
 * - stdout a terminal: the child runs on a pseudo-terminal (node-pty, as @lydell/node-pty ships it
 *   prebuilt inside its registry packages: no compiler, no download at install), so it still sees a
 *   TTY: colours, progress bars and prompts keep working. A PTY has one output stream (stdout and
 *   stderr merged, as a terminal shows them); our stdin goes to it in raw mode (Ctrl-C reaches the
 *   child through the PTY's line discipline), its size follows ours. When the PTY module cannot be
 *   loaded, pipes are used with a warning.
 *
 * Exit code and signals are passed through like the unmasked `run`.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { constants } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import type { CliContext } from '../context.js';
import { UserError } from '../errors.js';
import { Masker, type Secret } from './mask.js';

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/** `file` as the OS would find it on PATH (for a clear "not found" before a PTY hides it). */
function resolveCommand(file: string, env: NodeJS.ProcessEnv): string {
  const candidates =
    file.includes('/') || isAbsolute(file)
      ? [file]
      : (env.PATH ?? '')
          .split(delimiter)
          .filter(Boolean)
          .map((d) => join(d, file));
  let denied = false;
  for (const c of candidates) {
    try {
      if (!statSync(c).isFile()) continue;
      accessSync(c, fsConstants.X_OK);
      return c;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EACCES') denied = true;
    }
  }
  if (denied) throw new UserError(`Permission denied: ${file}`, { exitCode: 126 });
  throw new UserError(`Command not found: ${file}`, { exitCode: 127 });
}

/**
 * Writes to fd 1/2 without throwing on a closed pipe (`breeze run --mask -- cmd | head`);
 * `onClosed` runs when the reader has gone (EPIPE).
 */
function writer(stream: NodeJS.WriteStream, onClosed?: () => void): (b: Buffer) => void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') onClosed?.();
  });
  return (b) => {
    if (b.length) stream.write(b);
  };
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | number | null): number {
  if (typeof signal === 'number' && signal > 0) return 128 + signal;
  if (typeof signal === 'string') return 128 + (constants.signals[signal] ?? 0);
  return code ?? 0;
}

interface PtyModule {
  spawn(
    file: string,
    args: string[],
    opts: { name: string; cols: number; rows: number; cwd: string; env: NodeJS.ProcessEnv },
  ): {
    pid: number;
    onData(cb: (d: string) => void): void;
    onExit(cb: (e: { exitCode: number; signal?: number }) => void): void;
    write(d: string | Buffer): void;
    resize(cols: number, rows: number): void;
    kill(signal?: string): void;
  };
}

async function loadPty(): Promise<PtyModule | null> {
  try {
    return (await import('@lydell/node-pty')) as unknown as PtyModule;
  } catch {
    return null;
  }
}

/** Runs the child with masked output. Resolves with the exit code to pass on. */
export async function runMasked(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  secrets: Secret[],
  ctx: CliContext,
): Promise<number> {
  const path = resolveCommand(file, env);
  if (process.stdout.isTTY) {
    const pty = await loadPty();
    if (pty) return runOnPty(pty, path, args, env, secrets, ctx);
    ctx.out.warn('Warning: no pseudo-terminal support here: the command gets pipes, not a terminal.');
  }
  return runOnPipes(path, args, env, secrets, ctx);
}

function runOnPipes(
  path: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  secrets: Secret[],
  ctx: CliContext,
): Promise<number> {
  const child = spawn(path, args, { stdio: ['inherit', 'pipe', 'pipe'], env });
  // Our reader has gone: the child gets the SIGPIPE its write would have earned unmasked, then its
  // pipe is closed (a child ignoring SIGPIPE gets a write error), so `breeze run --mask -- yes |
  // head -1` ends, with yes's 141, instead of masking into a closed pipe forever.
  const readerGone = (from: NodeJS.ReadableStream & { destroy(): void }) => () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGPIPE');
    from.destroy();
  };
  const streams = [
    {
      from: child.stdout!,
      to: writer(process.stdout, readerGone(child.stdout!)),
      masker: new Masker(secrets),
    },
    {
      from: child.stderr!,
      to: writer(process.stderr, readerGone(child.stderr!)),
      masker: new Masker(secrets),
    },
  ];
  const ended = streams.map(
    (s) =>
      new Promise<void>((resolve) => {
        s.from.on('data', (d: Buffer) => s.to(s.masker.push(d)));
        s.from.on('close', () => {
          s.to(s.masker.end());
          resolve();
        });
      }),
  );
  const fromTerminal = (sig: NodeJS.Signals) =>
    (sig === 'SIGINT' || sig === 'SIGQUIT') && process.stdin.isTTY;
  const forward = (sig: NodeJS.Signals) => {
    if (fromTerminal(sig)) return;
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  return withSignals(ctx, forward, async () => {
    const code = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c, s) => resolve(exitCodeOf(c, s)));
    });
    // a grandchild may keep the pipes open after the child left: do not wait for it forever
    await Promise.race([Promise.all(ended), new Promise((r) => setTimeout(r, 2000).unref())]);
    for (const s of streams) s.to(s.masker.end());
    return code;
  });
}

async function runOnPty(
  pty: PtyModule,
  path: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  secrets: Secret[],
  ctx: CliContext,
): Promise<number> {
  const out = writer(process.stdout);
  const masker = new Masker(secrets);
  const term = pty.spawn(path, args, {
    name: env.TERM || 'xterm-256color',
    cols: process.stdout.columns || 80,
    rows: process.stdout.rows || 24,
    cwd: process.cwd(),
    env,
  });
  const stdin = process.stdin;
  const raw = stdin.isTTY;
  const onInput = (d: Buffer) => term.write(d);
  // stdin from a pipe or file: its end is an end-of-file on the terminal (^D at a line start)
  const onEnd = () => term.write('\x04');
  if (raw) stdin.setRawMode(true);
  stdin.on('data', onInput);
  if (!raw) stdin.once('end', onEnd);
  stdin.resume();
  const onResize = () => term.resize(process.stdout.columns || 80, process.stdout.rows || 24);
  process.stdout.on('resize', onResize);
  // a signal sent to breeze (kill, not a key press: those go through the PTY) goes to the child
  const forward = (sig: NodeJS.Signals) => {
    try {
      term.kill(sig);
    } catch {
      // already gone
    }
  };
  try {
    return await withSignals(ctx, forward, async () => {
      const done = new Promise<number>((resolve) => {
        term.onExit((e) => resolve(exitCodeOf(e.exitCode, e.signal ?? null)));
      });
      term.onData((d) => out(masker.push(Buffer.from(d, 'utf8'))));
      const code = await done;
      // the last output may still be in flight after the exit event
      await new Promise((r) => setTimeout(r, 50));
      out(masker.end());
      return code;
    });
  } finally {
    stdin.off('data', onInput);
    stdin.off('end', onEnd);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
    process.stdout.off('resize', onResize);
  }
}

async function withSignals<T>(
  ctx: CliContext,
  forward: (sig: NodeJS.Signals) => void,
  body: () => Promise<T>,
): Promise<T> {
  const extra = FORWARDED.filter((s) => s !== 'SIGINT' && s !== 'SIGTERM');
  ctx.onSignal(forward);
  for (const s of extra) process.on(s, forward);
  try {
    return await body();
  } finally {
    ctx.onSignal(null);
    for (const s of extra) process.off(s, forward);
  }
}
