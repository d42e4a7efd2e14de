import { closeSync, openSync, readFileSync, unlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  probeSocket,
  type ResidentPaths,
  type ResidentRecord,
  readRecord,
  residentPaths,
  socketDirProblem,
} from '../core/resident.js';
import { ensurePrivateDir, withDirLock } from '../credentials/atomic-file.js';
import { UserError } from './errors.js';

/**
 * The CLI's side of the resident local server (docs/architecture.md "Embedded commands"): find the
 * running one, or start it. Light: no server module is loaded here; the server runs in its own
 * process (`breeze server run`).
 */

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {}
}

/** The running resident server of `configDir` when it answers on its socket with the record's pid. */
export async function findResident(
  paths: ResidentPaths,
): Promise<{ record: ResidentRecord; idleMs: number } | undefined> {
  const record = readRecord(paths.record);
  if (!record || record.socket !== paths.socket) return undefined;
  // a socket outside the data directory is trusted only in a private directory of this user's
  if (paths.socketDir && socketDirProblem(paths.socketDir)) return undefined;
  const info = await probeSocket(record.socket);
  if (!info || info.pid !== record.pid) return undefined;
  return { record, idleMs: info.idle_ms };
}

/**
 * Stops the resident server that answers on the socket (SIGTERM to the pid it reported, so never a
 * stranger's process), waits for it to leave, and removes what a dead one left behind. Resolves with
 * the pid it stopped, if any.
 */
export async function stopResident(paths: ResidentPaths, timeoutMs = 15_000): Promise<number | undefined> {
  const found = await findResident(paths);
  let stopped: number | undefined;
  if (found) {
    const pid = found.record.pid;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {}
    const until = Date.now() + timeoutMs;
    while (alive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
    if (alive(pid))
      throw new UserError(`The resident server (pid ${pid}) did not stop within ${timeoutMs / 1000} s.`);
    stopped = pid;
  }
  // a dead server's leftovers (a killed process removes nothing)
  const record = readRecord(paths.record);
  if (!record || !alive(record.pid) || record.pid === stopped) {
    removeQuietly(paths.record);
    if (!(await probeSocket(paths.socket, 1000))) removeQuietly(paths.socket);
  }
  return stopped;
}

/**
 * The resident server for `configDir`, started when none answers (or one of another version does).
 * Starting holds the data directory's lock, so concurrent first commands start one server.
 */
export async function ensureResident(
  configDir: string,
  opts: {
    version: string;
    env: NodeJS.ProcessEnv;
    trace?: (line: string) => void;
    /** the record's server did not take a connection: ask the server itself (no quick path) */
    recheck?: boolean;
  },
): Promise<ResidentRecord> {
  const paths = residentPaths(configDir);
  // a socket outside the data directory (a deep config dir): never connect to one in a directory
  // another user could have made (after a reboot or a temp-dir cleanup, while a killed server's
  // record still names the socket there): the CLI would send its requests and key to them
  const sockDirProblem = paths.socketDir ? socketDirProblem(paths.socketDir) : null;
  if (sockDirProblem) throw new UserError(`Cannot use the embedded server: ${sockDirProblem}.`);
  // Every embedded command comes here: the common case without a connection. The record is written
  // by the server once it listens and removed (with the socket) before it stops listening, so a
  // record of our version whose process is alive names the running server. When it does not after
  // all (the server left since, or a killed server's pid was reused), the command's first
  // connection finds no socket or no listener, which is never a sent request: the client comes
  // back with `recheck` (SocketTarget.reconnect). Anything else (a dead or replaced server,
  // another version) takes the careful path below, which asks the server itself.
  const record = opts.recheck ? undefined : readRecord(paths.record);
  if (record && record.socket === paths.socket && record.version === opts.version && alive(record.pid)) {
    return record;
  }
  const found = await findResident(paths);
  if (found && found.record.version === opts.version) return found.record;
  ensurePrivateDir(paths.dir);
  return withDirLock(paths.dir, async () => {
    // another command may have started it while we waited for the lock
    const again = await findResident(paths);
    if (again && again.record.version === opts.version) return again.record;
    if (again) opts.trace?.(`* replacing the resident server of version ${again.record.version}`);
    await stopResident(paths);
    return spawnResident(configDir, paths, opts);
  });
}

async function spawnResident(
  configDir: string,
  paths: ResidentPaths,
  opts: { version: string; env: NodeJS.ProcessEnv; trace?: (line: string) => void },
): Promise<ResidentRecord> {
  const { spawn } = process.getBuiltinModule('node:child_process');
  const bin = fileURLToPath(new URL('../../bin/breeze.js', import.meta.url));
  const env = { ...opts.env };
  // a long-lived process keeps no key of this command in its environment
  delete env.BREEZE_API_KEY;
  delete env.BREEZE_SERVER;
  const log = openSync(paths.log, 'a', 0o600);
  let exited: string | undefined;
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(process.execPath, [bin, 'server', 'run', '--config-dir', configDir], {
      cwd: paths.dir,
      env,
      detached: true,
      stdio: ['ignore', log, log],
    });
  } finally {
    closeSync(log);
  }
  child.once('error', (err) => {
    exited = err.message;
  });
  child.once('exit', (code, signal) => {
    exited = signal ? `killed by ${signal}` : `exit code ${code}`;
  });
  opts.trace?.(`* starting the resident server (pid ${child.pid}), log ${paths.log}`);
  const until = Date.now() + 30_000;
  try {
    while (Date.now() < until) {
      const record = readRecord(paths.record);
      if (record && record.pid === child.pid) return record;
      if (exited) break;
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    child.unref();
  }
  let tail = '';
  try {
    tail = readFileSync(paths.log, 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {}
  if (!exited) {
    try {
      child.kill('SIGTERM');
    } catch {}
  }
  throw new UserError(
    `Could not start the embedded server (${exited ?? 'no answer within 30 s'}).${tail ? ` Its log says: ${tail}` : ''}`,
    { hint: `See ${paths.log}, or run "breeze serve" to see it start.` },
  );
}
