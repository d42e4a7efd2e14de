import { terminalLine } from './terminal-text.js';

/** A progress indicator on stderr (ora); silent when stderr is not a TTY. Texts are escaped (terminal-text.ts). */
export interface Spinner {
  text(text: string): void;
  succeed(text?: string): void;
  fail(text?: string): void;
  stop(): void;
}

export async function createSpinner(text: string): Promise<Spinner> {
  const { default: ora } = await import('ora');
  const s = ora({
    text: terminalLine(text),
    stream: process.stderr,
    discardStdin: false,
    isEnabled: Boolean(process.stderr.isTTY),
  }).start();
  return {
    text: (t) => {
      s.text = terminalLine(t);
    },
    succeed: (t) => {
      s.succeed(t === undefined ? t : terminalLine(t));
    },
    fail: (t) => {
      s.fail(t === undefined ? t : terminalLine(t));
    },
    stop: () => {
      s.stop();
    },
  };
}
