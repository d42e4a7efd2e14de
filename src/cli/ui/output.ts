import { writeSync } from 'node:fs';
import { clampText, type Printable, terminalJson, terminalLine } from './terminal-text.js';

/**
 * stdout for data, stderr for people. No chalk here: `token` and `env` use this and must start fast;
 * colourful output goes through ./theme.ts, loaded by the commands that draw tables.
 *
 * Every string handed to these functions is ONE line: control and format characters in it (newlines
 * included) are shown as visible escapes (./terminal-text.ts), so a value from a server or the
 * environment can neither drive the terminal nor fake a line. Several lines: pass an array.
 */
export interface Output {
  /** a line (or lines) of data on stdout */
  data(text: Printable | readonly Printable[]): void;
  /** one JSON document on stdout (exact JSON; characters a terminal acts on are \u-escaped) */
  json(value: unknown): void;
  /** a message for people on stderr */
  info(message: string): void;
  /** a warning on stderr (one line, prefixed) */
  warn(message: string): void;
  /** a success message on stderr */
  success(message: string): void;
  /**
   * Tells the output that a live line (a spinner) is drawn on stderr, or that it is gone (null):
   * while it is there, every message is printed above it (clear, print, redraw) instead of being
   * glued to it.
   */
  live?(line: LiveLine | null): void;
}

/** A line redrawn in place on a terminal (a spinner). */
export interface LiveLine {
  /** erases it, leaving the cursor at the start of its line */
  clear(): void;
  /** draws it again */
  render(): void;
}

/** Where an Output writes: process.stdout / process.stderr, or an `fdWriter`. */
export interface OutputStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

/**
 * Longest message line for people (stderr), in characters before escaping: far above any the CLI
 * writes (a login line with a 2048-character URL), far below a server's megabyte-long name.
 */
export const MAX_MESSAGE_LENGTH = 4096;

/** streams an Output has printed data (a line or a JSON document) on */
const printedOn = new WeakSet<OutputStream>();

/** True when data went to `stream` (then a failure must not add a second JSON document to it). */
export function hasPrintedData(stream: OutputStream): boolean {
  return printedOn.has(stream);
}

/**
 * Synchronous writes straight to a file descriptor (1 or 2), for the fast entry (bin.ts): touching
 * `process.stdout` makes Node build a stream (node:stream, and net + tty for a pipe or terminal),
 * milliseconds `breeze token` does not need for one line.
 * - EPIPE (the reader has gone: `breeze token | head -c 0`): the rest is dropped silently, as
 *   process.stdout's guard in bin.ts does.
 * - EAGAIN (a non-blocking pipe inherited from the parent, and full): waits and retries until the
 *   reader takes it, as process.stdout would.
 * - anything else: `onError` (once; later writes are dropped).
 * `isTTY` is looked up on first use only (node:tty).
 */
export function fdWriter(fd: number, onError: (err: NodeJS.ErrnoException) => void = () => {}): OutputStream {
  let broken = false;
  let tty: boolean | undefined;
  return {
    write(text: string): boolean {
      if (broken) return false;
      const buf = Buffer.from(text, 'utf8');
      let off = 0;
      let waitMs = 1;
      while (off < buf.length) {
        try {
          off += writeSync(fd, buf, off, buf.length - off);
          waitMs = 1;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EAGAIN') {
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, waitMs);
            waitMs = Math.min(waitMs * 2, 50);
            continue;
          }
          broken = true;
          if (code !== 'EPIPE') onError(err as NodeJS.ErrnoException);
          return false;
        }
      }
      return true;
    },
    get isTTY() {
      tty ??= process.getBuiltinModule('node:tty').isatty(fd);
      return tty;
    },
  };
}

export function createOutput(streams: { stdout: OutputStream; stderr: OutputStream } = process): Output {
  let live: LiveLine | null = null;
  const write = (s: OutputStream, text: string) => {
    // the spinner's line is on the terminal stderr is on; stdout shares it only when a TTY too
    if (live && (s === streams.stderr || s.isTTY)) {
      live.clear();
      s.write(text);
      live.render();
    } else {
      s.write(text);
    }
  };
  const lines = (s: OutputStream, text: Printable | readonly Printable[]) => {
    const list = Array.isArray(text) ? (text as readonly Printable[]) : [text as Printable];
    write(s, list.map((l) => `${terminalLine(l)}\n`).join(''));
  };
  return {
    live: (l) => {
      live = l;
    },
    data: (text) => {
      printedOn.add(streams.stdout);
      lines(streams.stdout, text);
    },
    json: (value) => {
      printedOn.add(streams.stdout);
      write(streams.stdout, `${terminalJson(value)}\n`);
    },
    info: (message) => lines(streams.stderr, clampText(message, MAX_MESSAGE_LENGTH)),
    warn: (message) =>
      lines(
        streams.stderr,
        clampText(/^warning:/i.test(message) ? message : `Warning: ${message}`, MAX_MESSAGE_LENGTH),
      ),
    success: (message) => lines(streams.stderr, clampText(`✓ ${message}`, MAX_MESSAGE_LENGTH)),
  };
}
