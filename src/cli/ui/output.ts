import { type Printable, terminalJson, terminalLine } from './terminal-text.js';

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

/** streams an Output has printed data (a line or a JSON document) on */
const printedOn = new WeakSet<NodeJS.WritableStream>();

/** True when data went to `stream` (then a failure must not add a second JSON document to it). */
export function hasPrintedData(stream: NodeJS.WritableStream): boolean {
  return printedOn.has(stream);
}

export function createOutput(
  streams: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream } = process,
): Output {
  let live: LiveLine | null = null;
  const write = (s: NodeJS.WritableStream, text: string) => {
    // the spinner's line is on the terminal stderr is on; stdout shares it only when a TTY too
    if (live && (s === streams.stderr || (s as { isTTY?: boolean }).isTTY)) {
      live.clear();
      s.write(text);
      live.render();
    } else {
      s.write(text);
    }
  };
  const lines = (s: NodeJS.WritableStream, text: Printable | readonly Printable[]) => {
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
    info: (message) => lines(streams.stderr, message),
    warn: (message) => lines(streams.stderr, /^warning:/i.test(message) ? message : `Warning: ${message}`),
    success: (message) => lines(streams.stderr, `✓ ${message}`),
  };
}
