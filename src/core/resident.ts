import { lstatSync, mkdirSync, readFileSync } from 'node:fs';
import { type RequestOptions, request } from 'node:http';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

/**
 * Where the resident local server (the embedded server shared by CLI commands, src/server/resident.ts)
 * can be found: light on purpose, the CLI reads it on every embedded command.
 */

/** What `<config dir>/server/resident.json` holds. */
export interface ResidentRecord {
  pid: number;
  version: string;
  socket: string;
  url: string;
  started_at: string;
}

/** Header on answers over the socket only (never over TCP): `{"pid","version","idle_ms"}`. */
export const RESIDENT_HEADER = 'x-breeze-resident';

export const DEFAULT_IDLE_MS = 2 * 60_000;

export interface ResidentPaths {
  dir: string;
  /** `<dir>/breeze.sock`, or a short path elsewhere when that one is too long (see residentPaths) */
  socket: string;
  /** the directory of the socket when it is not `dir` (a 0700 directory of this user's) */
  socketDir?: string;
  record: string;
  log: string;
}

/**
 * The longest socket path used as it is: a unix socket's path holds 108 bytes on Linux (104 on
 * macOS) with its terminating NUL.
 */
export const MAX_SOCKET_PATH = 100;

export function residentPaths(configDir: string, env: NodeJS.ProcessEnv = process.env): ResidentPaths {
  const dir = join(configDir, 'server'); // embeddedDataDir: the data directory `breeze serve` uses too
  const paths: ResidentPaths = {
    dir,
    socket: join(dir, 'breeze.sock'),
    record: join(dir, 'resident.json'),
    log: join(dir, 'resident.log'),
  };
  if (Buffer.byteLength(paths.socket) > MAX_SOCKET_PATH) {
    // A deep config dir (a test's temp dir, a long home): the socket goes to a short directory of
    // this user's instead, named by the data directory so each config dir has its own. crypto is
    // loaded only here (it costs every command a few ms).
    const { createHash } = process.getBuiltinModule('node:crypto');
    const tag = createHash('sha256').update(resolve(dir)).digest('hex').slice(0, 24);
    const runtime = env.XDG_RUNTIME_DIR;
    const uid = process.getuid?.() ?? 'user';
    paths.socketDir =
      runtime && isAbsolute(runtime) && Buffer.byteLength(runtime) <= 60
        ? join(runtime, 'breeze')
        : join(tmpdir(), `breeze-${uid}`);
    paths.socket = join(paths.socketDir, `${tag}.sock`);
  }
  return paths;
}

/**
 * Creates the socket directory outside the data directory (0700), or checks that the one there is
 * this user's own, private and not a link: in a shared temp directory, another user could have made
 * it first to catch the CLI's connections.
 */
export function ensureSocketDir(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const problem = socketDirProblem(dir);
  if (problem) throw new Error(problem);
}

/**
 * Why the socket directory outside the data directory cannot be trusted (null when it is this
 * user's own, private and not a link, or missing). The CLI checks it before it connects: a stale
 * record (a killed server) names a socket there, and after the temp dir was cleaned another user
 * could have made the directory and a listener in it to receive the CLI's requests and key.
 */
export function socketDirProblem(dir: string): string | null {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o077) !== 0) {
    return `${dir} is not a private directory of this user's (0700); remove it or set XDG_RUNTIME_DIR`;
  }
  return null;
}

/** The record, or undefined when missing or unreadable (a half-written one cannot exist: atomic). */
export function readRecord(file: string): ResidentRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as Partial<ResidentRecord>;
    if (
      typeof r.pid === 'number' &&
      Number.isInteger(r.pid) &&
      r.pid > 0 &&
      typeof r.version === 'string' &&
      typeof r.socket === 'string' &&
      typeof r.url === 'string'
    ) {
      return r as ResidentRecord;
    }
  } catch {}
  return undefined;
}

/** What the server at `socket` says about itself (`GET /healthz` over the socket), or undefined. */
export function probeSocket(
  socket: string,
  timeoutMs = 3000,
): Promise<{ pid: number; version: string; idle_ms: number } | undefined> {
  const options: RequestOptions & { servername: string } = {
    socketPath: socket,
    path: '/healthz',
    method: 'GET',
    timeout: timeoutMs,
    agent: false,
    // none (plain HTTP); left out, node:http's agent works one out from the host and compiles its
    // IPv6 regex to do so: milliseconds
    servername: '',
  };
  return new Promise((resolve) => {
    const req = request(options, (res) => {
      res.resume();
      const raw = res.headers[RESIDENT_HEADER];
      try {
        const info = JSON.parse(String(raw)) as { pid: number; version: string; idle_ms: number };
        resolve(res.statusCode === 200 && typeof info.pid === 'number' ? info : undefined);
      } catch {
        resolve(undefined);
      }
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}
