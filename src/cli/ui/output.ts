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
}

export function createOutput(
  streams: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream } = process,
): Output {
  const lines = (s: NodeJS.WritableStream, text: Printable | readonly Printable[]) => {
    const list = Array.isArray(text) ? (text as readonly Printable[]) : [text as Printable];
    s.write(list.map((l) => `${terminalLine(l)}\n`).join(''));
  };
  return {
    data: (text) => lines(streams.stdout, text),
    json: (value) => streams.stdout.write(`${terminalJson(value)}\n`),
    info: (message) => lines(streams.stderr, message),
    warn: (message) => lines(streams.stderr, /^warning:/i.test(message) ? message : `Warning: ${message}`),
    success: (message) => lines(streams.stderr, `✓ ${message}`),
  };
}
