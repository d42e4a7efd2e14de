import { spawn, spawnSync } from 'node:child_process';
import { BIN, ROOT } from './paths.js';

/** An environment for the CLI that ignores the developer's own Breeze settings. */
export function cliEnv(configDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith('BREEZE_')) delete env[name];
  }
  return {
    ...env,
    BREEZE_CONFIG_DIR: configDir,
    BREEZE_STORAGE: 'file',
    FORCE_COLOR: '0',
    NO_COLOR: '1',
    ...extra,
  };
}

/** `breeze <sub> --help` exits 0 and mentions every one of `needles`. */
export function cliHas(args: string[], needles: string[] = []): boolean {
  const r = spawnSync(process.execPath, [BIN, ...args, '--help'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 15_000,
    env: { ...process.env, FORCE_COLOR: '0' },
  });
  const text = `${r.stdout}${r.stderr}`;
  return r.status === 0 && needles.every((n) => text.includes(n));
}

export interface Timed {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion and times it from spawn to exit (stdout/stderr drained). */
export function timeCommand(
  argv: string[],
  env: NodeJS.ProcessEnv,
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}
