import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, ROOT } from './paths.js';
import { sleep } from './stats.js';

export interface ServerProcess {
  url: string;
  pid: number;
  /** how it was started: `breeze serve` or the fallback script */
  via: 'breeze serve' | 'startServer script';
  stop(): Promise<void>;
}

export interface ServerSpec {
  dataDir: string;
  databaseUrl?: string;
  /** extra environment for the server (e.g. BREEZE_PEPPER) */
  env?: Record<string, string>;
  /**
   * where the child's stderr goes (start-up messages: the listening URL). Its stdout, the JSON
   * request log, goes to /dev/null: the server still formats and writes every line, but no disk
   * or log shipper is part of the figure.
   */
  logFile: string;
}

let serveAvailable: boolean | undefined;

/** Whether `breeze serve` exists yet with the flags the bench needs. */
export function breezeServeAvailable(): boolean {
  if (serveAvailable === undefined) {
    const r = spawnSync(process.execPath, [BIN, 'serve', '--help'], { encoding: 'utf8', timeout: 15_000 });
    serveAvailable = r.status === 0 && r.stdout.includes('--rate-limit-per-key');
  }
  return serveAvailable;
}

const LISTEN_URL = /https?:\/\/(?:127\.0\.0\.1|localhost|\[::1\]):(\d+)/;

/**
 * Starts the server in a child process with the per-key rate limit off, on 127.0.0.1 and a free
 * port: `breeze serve` when the CLI has it, else a small script calling dist's startServer with the
 * same options. Resolves once `/healthz` answers 200.
 */
export async function startServerProcess(spec: ServerSpec): Promise<ServerProcess> {
  const useCli = breezeServeAvailable();
  const args = useCli
    ? [
        BIN,
        'serve',
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--data-dir',
        spec.dataDir,
        '--rate-limit-per-key',
        '0',
        ...(spec.databaseUrl ? ['--database-url', spec.databaseUrl] : []),
      ]
    : [join(ROOT, 'bench', 'serve-child.mjs'), spec.dataDir, spec.databaseUrl ?? ''];
  const fd = openSync(spec.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, args, {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', fd],
      env: { ...process.env, FORCE_COLOR: '0', CI: '1', ...spec.env },
    });
  } finally {
    closeSync(fd);
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const stop = async () => {
    if (gone) return;
    child.kill('SIGTERM');
    const timedOut = await Promise.race([exited.then(() => false), sleep(5000).then(() => true)]);
    if (timedOut) {
      child.kill('SIGKILL');
      await exited;
    }
  };

  const deadline = Date.now() + 30_000;
  let url: string | undefined;
  while (Date.now() < deadline && !gone) {
    const m = LISTEN_URL.exec(readFileSync(spec.logFile, 'utf8'));
    if (m) {
      url = `http://127.0.0.1:${m[1]}`;
      try {
        const res = await fetch(`${url}/healthz`);
        await res.arrayBuffer();
        if (res.status === 200) break;
      } catch {
        // not listening yet
      }
    }
    await sleep(50);
  }
  if (!url || gone || Date.now() >= deadline) {
    await stop();
    const log = readFileSync(spec.logFile, 'utf8').slice(-2000);
    throw new Error(`server did not come up (${useCli ? 'breeze serve' : 'serve-child.mjs'}):\n${log}`);
  }
  return { url, pid: child.pid ?? -1, via: useCli ? 'breeze serve' : 'startServer script', stop };
}
