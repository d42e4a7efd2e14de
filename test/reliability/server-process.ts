import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');
export const FIXTURE = resolve(ROOT, 'test/fixtures/reliability-server.mjs');
export const BIN = resolve(ROOT, 'bin/breeze.js');

/** dist/ is built by the vitest global setup; without it no server process can start. */
export const distReady = existsSync(resolve(ROOT, 'dist/server/serve.js'));

export interface ServerProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  seedKey?: string;
  /** everything the process wrote on stdout and stderr so far */
  output(): string;
  /** SIGTERM, then wait for the exit; SIGKILL after `graceMs` */
  stop(graceMs?: number): Promise<number | null>;
  /** calls `listener` with every complete line of output from now on; returns an unsubscribe */
  onLine(listener: (line: string) => void): () => void;
  /** resolves with the exit code / signal once the process is gone */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts test/fixtures/reliability-server.mjs (the `startServer` of `breeze serve`) in its own
 * process on 127.0.0.1 and a free port, and waits for its ready line.
 */
export async function spawnFixtureServer(
  dataDir: string,
  opts: {
    seedEmail?: string;
    rateLimitPerKey?: number;
    timeoutMs?: number;
    exposeGc?: boolean;
    /** a PostgreSQL URL: the server stores there instead of SQLite in `dataDir` */
    databaseUrl?: string;
  } = {},
): Promise<ServerProcess> {
  const args = [
    ...(opts.exposeGc ? ['--expose-gc'] : []),
    FIXTURE,
    dataDir,
    String(opts.rateLimitPerKey ?? 0),
  ];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: {
      ...process.env,
      BREEZE_FIXTURE_SEED: opts.seedEmail ?? '',
      BREEZE_FIXTURE_DATABASE_URL: opts.databaseUrl ?? '',
    },
    // stdin stays open for the fixture's lifetime: it stops itself when the test process is gone
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return attach(child, opts.timeoutMs ?? 20_000, (line) => {
    try {
      const ready = JSON.parse(line) as { url?: string; seedKey?: string };
      return ready.url ? { url: ready.url, seedKey: ready.seedKey } : undefined;
    } catch {
      return undefined;
    }
  });
}

/**
 * Wraps a spawned server: collects its output, waits until `ready` recognises a line of it, and
 * fails with that output if the process exits first or takes longer than `timeoutMs`.
 */
export function attach(
  child: ChildProcess,
  timeoutMs: number,
  ready: (line: string) => { url: string; seedKey?: string } | undefined,
): Promise<ServerProcess> {
  const chunks: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once('exit', (code, signal) => res({ code, signal })),
  );
  return new Promise((resolvePromise, reject) => {
    let done = false;
    const listeners = new Set<(line: string) => void>();
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      child.kill('SIGKILL');
      reject(new Error(`server did not start within ${timeoutMs} ms:\n${chunks.join('')}`));
    }, timeoutMs);
    // one line buffer per stream: stdout and stderr interleave at any byte
    const pendingOf = { out: '', err: '' };
    const onData = (stream: 'out' | 'err') => (buf: Buffer) => {
      const text = buf.toString('utf8');
      chunks.push(text);
      const lines = (pendingOf[stream] + text).split('\n');
      pendingOf[stream] = lines.pop() ?? '';
      for (const line of lines) {
        for (const l of listeners) l(line);
        if (done) continue;
        const r = ready(line.trim());
        if (!r) continue;
        done = true;
        clearTimeout(timer);
        resolvePromise({
          ...r,
          pid: child.pid!,
          child,
          output: () => chunks.join(''),
          onLine(listener) {
            listeners.add(listener);
            return () => listeners.delete(listener);
          },
          exited,
          async stop(graceMs = 5000) {
            if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
            child.kill('SIGTERM');
            const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
            const { code } = await exited;
            clearTimeout(t);
            return code;
          },
        });
      }
    };
    child.stdout?.on('data', onData('out'));
    child.stderr?.on('data', onData('err'));
    exited.then(({ code, signal }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before it was ready:\n${chunks.join('')}`));
    });
  });
}

/** Resident set size of a process in bytes (Linux /proc), or undefined when it is gone. */
export function rssOf(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** fetch() against the server with a bounded wait. */
export async function call(
  url: string,
  init: RequestInit & { timeoutMs?: number } = {},
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(init.timeoutMs ?? 10_000) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body, headers: res.headers };
}

/**
 * Memory of a fixture server started with `exposeGc`, right after a full garbage collection
 * (SIGUSR2 makes it collect and print `{"memory": {rss, heapUsed}}`).
 */
export function memoryAfterGc(
  server: ServerProcess,
  timeoutMs = 5000,
): Promise<{ rss: number; heapUsed: number }> {
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error('no memory report: was the server started with exposeGc?'));
    }, timeoutMs);
    const off = server.onLine((line) => {
      try {
        const m = (JSON.parse(line) as { memory?: { rss: number; heapUsed: number } }).memory;
        if (!m) return;
        clearTimeout(timer);
        off();
        resolvePromise(m);
      } catch {
        // another line
      }
    });
    server.child.kill('SIGUSR2');
  });
}
