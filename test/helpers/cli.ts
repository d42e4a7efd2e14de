/**
 * Spawning the built CLI (bin/breeze.js) the way a user would: FORCE_COLOR=0, a temp
 * BREEZE_CONFIG_DIR, no inherited BREEZE_* variables. Shared by every e2e suite.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { SeedKeyOptions } from './server.js';

export const BIN = resolve(import.meta.dirname, '../../bin/breeze.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunCliOptions {
  /** BREEZE_CONFIG_DIR (required unless env sets it) */
  configDir?: string;
  /** extra environment; `undefined` values remove a variable */
  env?: Record<string, string | undefined>;
  /** written to stdin, then stdin is closed (default: closed at once) */
  input?: string;
  cwd?: string;
  /** kill with SIGKILL after this many ms (default 30 s) */
  timeoutMs?: number;
}

/** The environment a test CLI process gets: the parent's minus BREEZE_* / CI / colour variables, plus `extra`. */
export function cliEnv(
  configDir: string | undefined,
  extra: Record<string, string | undefined> = {},
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('BREEZE_') || k === 'NO_COLOR' || k === 'FORCE_COLOR' || k === 'CI') continue;
    env[k] = v;
  }
  env.FORCE_COLOR = '0';
  // the resident embedded server a command starts leaves soon after the test (global teardown stops the rest)
  env.BREEZE_SERVER_IDLE_MS = '3000';
  if (configDir) env.BREEZE_CONFIG_DIR = configDir;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Starts `breeze args...` and returns the child (for signals, streaming stdin/stdout). */
export function spawnCli(args: string[], opts: RunCliOptions = {}): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], {
    cwd: opts.cwd,
    env: cliEnv(opts.configDir, opts.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Runs `breeze args...` to completion and collects its output and exit code. */
export function runCli(args: string[], opts: RunCliOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, opts);
  return collect(child, opts);
}

/** Collects output and exit status of a spawned CLI; writes `input` to stdin. */
export function collect(
  child: ChildProcess,
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  child.stdin?.on('error', () => {});
  child.stdin?.end(opts.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
  return new Promise((resolvePromise, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

/** Resolves when `stream` has printed a line matching `pattern` (returns the match). */
export function waitForOutput(
  child: ChildProcess,
  pattern: RegExp,
  stream: 'stdout' | 'stderr' = 'stderr',
  timeoutMs = 20_000,
): Promise<RegExpMatchArray> {
  return new Promise((resolvePromise, reject) => {
    let seen = '';
    const s = child[stream]!;
    const timer = setTimeout(() => {
      s.off('data', onData);
      reject(new Error(`timed out waiting for ${pattern} on ${stream}; saw: ${seen}`));
    }, timeoutMs);
    const onData = (d: Buffer | string) => {
      seen += d.toString();
      const m = seen.match(pattern);
      if (m) {
        clearTimeout(timer);
        s.off('data', onData);
        resolvePromise(m);
      }
    };
    s.on('data', onData);
  });
}

/** A fresh temporary config directory (not created inside: the CLI must create it with 0700). */
export function tempConfigDir(): { dir: string; cleanup(): void } {
  const parent = mkdtempSync(join(tmpdir(), 'breeze-cli-'));
  return { dir: join(parent, 'config'), cleanup: () => rmSync(parent, { recursive: true, force: true }) };
}

/**
 * Mints a key directly in a server data directory (the SQLite file `breeze serve --data-dir` and the
 * embedded server use), with that directory's pepper: the way to get a first key into a CLI test
 * without a login flow. Works while a server runs on the same directory.
 */
export async function seedKeyInDataDir(
  dataDir: string,
  opts: SeedKeyOptions = {},
): Promise<{ apiKey: string; keyId: string; userId: string }> {
  const { openStore } = await import('../../src/server/store/index.js');
  const { resolvePepper } = await import('../../src/server/config.js');
  const { createSecretHasher } = await import('../../src/core/hash.js');
  const { KeyService } = await import('../../src/server/key-service.js');
  const { VerificationCache } = await import('../../src/server/verification-cache.js');
  const { mintSeedKey } = await import('./server.js');
  const store = await openStore({ dataDir });
  try {
    const keys = new KeyService(
      store,
      createSecretHasher(resolvePepper(dataDir)),
      new VerificationCache(0),
      () => new Date(),
    );
    return await mintSeedKey(store, keys, opts);
  } finally {
    await store.close();
  }
}

/** Stops a spawned `breeze serve` (SIGTERM, its clean stop) and waits until it has exited. */
export async function stopServe(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  await exited;
}
