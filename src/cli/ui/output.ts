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
  const line = (s: NodeJS.WritableStream, text: string) => s.write(text.endsWith('\n') ? text : `${text}\n`);
  return {
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
