// The child side of bench/lib/child-commands.ts: whole lines from stdin (a command may arrive split
// across reads); a line matching `pattern` is applied and answered "ok" on stdout. The bench closing
// its end of the pipe calls `stop`.
import { createInterface } from 'node:readline';

export function onCommands(pattern, apply, stop) {
  const commands = createInterface({ input: process.stdin });
  commands.on('line', (line) => {
    const m = pattern.exec(line.trim());
    if (!m) return;
    apply(m);
    process.stdout.write('ok\n');
  });
  commands.on('close', () => stop());
}
