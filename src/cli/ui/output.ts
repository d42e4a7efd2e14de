/**
 * stdout for data, stderr for people. No chalk here: `token` and `env` use this and must start fast;
 * colourful output goes through ./theme.ts, loaded by the commands that draw tables.
 */
export interface Output {
  /** a line of data on stdout */
  data(text: string): void;
  /** one JSON document on stdout */
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
  const line = (s: NodeJS.WritableStream, text: string) => {
    const t = text.endsWith('\n') ? text : `${text}\n`;
    // the spinner's line is on the terminal stderr is on; stdout shares it only when a TTY too
    if (live && (s === streams.stderr || (s as { isTTY?: boolean }).isTTY)) {
      live.clear();
      s.write(t);
      live.render();
    } else {
      s.write(t);
    }
  };
  return {
    live: (l) => {
      live = l;
    },
    data: (text) => {
      printedOn.add(streams.stdout);
      line(streams.stdout, text);
    },
    json: (value) => {
      printedOn.add(streams.stdout);
      line(streams.stdout, JSON.stringify(value, null, 2));
    },
    info: (message) => line(streams.stderr, message),
    warn: (message) => line(streams.stderr, /^warning:/i.test(message) ? message : `Warning: ${message}`),
    success: (message) => line(streams.stderr, `✓ ${message}`),
  };
}
