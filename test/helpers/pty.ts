/**
 * A pseudo-terminal for end-to-end tests that need a real TTY (spinners, prompts): python3's `pty`
 * module runs the command on a PTY of a fixed size and relays its output (stdout and stderr, as a
 * terminal shows them) to us, and what we write (e.g. "\x03" for Ctrl-C) to it. `renderScreen`
 * turns that byte stream into the lines a user would see.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';

const RELAY = `
import os, pty, sys, struct, fcntl, termios, select, signal
cols, rows = int(sys.argv[1]), int(sys.argv[2])
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
    os.execvp(sys.argv[3], sys.argv[3:])
inputs = [fd, 0]
while True:
    r, _, _ = select.select(inputs, [], [])
    if 0 in r:
        data = os.read(0, 1024)
        if data:
            os.write(fd, data)
        else:
            inputs.remove(0)
    if fd in r:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b''
        if not data:
            break
        os.write(1, data)
_, status = os.waitpid(pid, 0)
sys.exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
`;

/** True when python3 with the pty module is there. */
export function ptyAvailable(): boolean {
  return spawnSync('python3', ['-c', 'import pty, termios, fcntl'], { stdio: 'ignore' }).status === 0;
}

export interface PtyProcess {
  child: ChildProcess;
  /** everything the terminal received so far */
  output(): string;
  /** resolves when the output matches `pattern` */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** types into the terminal */
  write(data: string): void;
  /** resolves with the exit code */
  exited: Promise<number | null>;
}

/** Runs `command args...` on a `cols` x `rows` terminal. */
export function spawnInPty(
  command: string,
  args: string[],
  opts: { env: NodeJS.ProcessEnv; cols?: number; rows?: number },
): PtyProcess {
  const child = spawn(
    'python3',
    ['-c', RELAY, String(opts.cols ?? 100), String(opts.rows ?? 40), command, ...args],
    { env: opts.env, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    write: (data) => child.stdin!.write(data),
    exited,
    waitFor(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const started = Date.now();
        const tick = () => {
          const m = out.match(pattern);
          if (m) return resolve(m);
          if (Date.now() - started > timeoutMs || child.exitCode !== null)
            return reject(
              new Error(`no ${pattern} on the terminal; it shows:\n${renderScreen(out).join('\n')}`),
            );
          setTimeout(tick, 50);
        };
        tick();
      });
    },
  };
}

/**
 * The lines a terminal shows after receiving `data`: printable text, CR, LF, backspace, and the
 * cursor movements and erasures spinners use (CSI n A/B/C/D/G, CSI n K); other escapes are ignored.
 */
export function renderScreen(data: string): string[] {
  const lines: string[][] = [[]];
  let row = 0;
  let col = 0;
  const at = () => {
    while (lines.length <= row) lines.push([]);
    return lines[row]!;
  };
  for (let i = 0; i < data.length; i++) {
    const ch = data[i]!;
    if (ch === '\x1b') {
      // after the ESC: CSI "[params letter", or OSC "] ... BEL"
      const csi = /^\[([?\d;]*)([A-Za-z])/.exec(data.slice(i + 1));
      if (csi) {
        i += csi[0].length;
        const n = Number.parseInt(csi[1] || '', 10);
        switch (csi[2]) {
          case 'A':
            row = Math.max(0, row - (n || 1));
            break;
          case 'B':
            row += n || 1;
            break;
          case 'C':
            col += n || 1;
            break;
          case 'D':
            col = Math.max(0, col - (n || 1));
            break;
          case 'G':
            col = Math.max(0, (n || 1) - 1);
            break;
          case 'K': {
            const line = at();
            if (!n) line.length = Math.min(line.length, col);
            else if (n === 1) for (let c = 0; c <= col && c < line.length; c++) line[c] = ' ';
            else line.length = 0;
            break;
          }
        }
        continue;
      }
      if (data[i + 1] === ']') {
        const bel = data.indexOf('\x07', i);
        if (bel !== -1) i = bel;
      }
      continue;
    }
    if (ch === '\r') col = 0;
    else if (ch === '\n') row++;
    else if (ch === '\b') col = Math.max(0, col - 1);
    else if (ch >= ' ') {
      const line = at();
      while (line.length < col) line.push(' ');
      line[col++] = ch;
    }
  }
  return lines.map((l) => l.join('').trimEnd());
}
