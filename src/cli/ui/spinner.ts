import type { Output } from './output.js';
import { terminalLine } from './terminal-text.js';

/** A progress indicator on stderr (ora); silent when stderr is not a TTY. Texts are escaped (terminal-text.ts). */
export interface Spinner {
  text(text: string): void;
  succeed(text?: string): void;
  fail(text?: string): void;
  stop(): void;
}

/**
 * Starts a spinner on stderr. `out` learns about it, so messages printed while it spins (the
 * embedded server's mail line, warnings, the --verbose trace) go above it, not onto its line.
 */
export async function createSpinner(text: string, out?: Output): Promise<Spinner> {
  const { default: ora } = await import('ora');
  const s = ora({
    text: terminalLine(text),
    stream: process.stderr,
    discardStdin: false,
    isEnabled: Boolean(process.stderr.isTTY),
  }).start();
  if (s.isSpinning) out?.live?.({ clear: () => s.clear(), render: () => s.render() });
  const done = () => out?.live?.(null);
  return {
    text: (t) => {
      s.text = terminalLine(t);
    },
    succeed: (t) => {
      done();
      s.succeed(t === undefined ? t : terminalLine(t));
    },
    fail: (t) => {
      done();
      s.fail(t === undefined ? t : terminalLine(t));
    },
    stop: () => {
      done();
      s.stop();
    },
  };
}
