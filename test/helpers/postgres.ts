import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';

/**
 * A throw-away PostgreSQL server for tests: Debian's binaries, a fresh cluster in a temp dir,
 * listening on 127.0.0.1 and a free port (plus a unix socket in the temp dir), trust auth (loopback
 * only). PostgreSQL refuses to run as root, so as root it runs as the `postgres` user via runuser.
 *
 *   const pgs = await startPostgres();
 *   const url = await pgs.createDatabase('my_suite');   // postgres://postgres@127.0.0.1:<port>/my_suite
 *   ...
 *   await pgs.stop();                                     // stops the server, removes the temp dir
 *
 * Use `postgresAvailability()` with `requirePart()` to skip (or fail under BREEZE_TEST_REQUIRE=1).
 */
export interface TestPostgres {
  /** URL of database `dbName` (default `postgres`, which always exists) */
  url(dbName?: string): string;
  /** Creates a database and returns its URL. `icuLocale` (e.g. `en-US`) picks an ICU collation. */
  createDatabase(name: string, opts?: { icuLocale?: string }): Promise<string>;
  /** Runs SQL as the superuser in database `postgres` (e.g. pg_terminate_backend). */
  query<T extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<T[]>;
  readonly port: number;
  readonly version: string;
  /** Stops the server (fast shutdown: every client is disconnected), waits `downMs`, starts it again. */
  restart(opts?: { downMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

interface Binaries {
  bin: string;
  version: string;
}

const DB_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

function findBinaries(): Binaries | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')) && existsSync(join(root, v, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  const version = versions[0];
  return version ? { bin: join(root, version, 'bin'), version } : null;
}

function postgresUserIds(): { uid: number; gid: number } | null {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : null;
  } catch {
    return null;
  }
}

const isRoot = () => process.getuid?.() === 0;

/** Whether `startPostgres()` can work here, and if not, why. */
export function postgresAvailability(): { available: boolean; why: string } {
  const bins = findBinaries();
  if (!bins) return { available: false, why: 'no PostgreSQL binaries under /usr/lib/postgresql/*/bin' };
  if (isRoot()) {
    if (!postgresUserIds())
      return { available: false, why: 'running as root but there is no "postgres" user' };
    if (!existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser') && !existsSync('/usr/bin/runuser')) {
      return { available: false, why: 'running as root but runuser is missing' };
    }
  }
  return { available: true, why: `PostgreSQL ${bins.version}` };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** argv that runs `cmd` as the postgres user when we are root, else as ourselves. */
function asPostgres(cmd: string, args: string[]): [string, string[]] {
  return isRoot() ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts a fresh PostgreSQL cluster; throws (with the server's log) when it cannot. */
export async function startPostgres(): Promise<TestPostgres> {
  const bins = findBinaries();
  if (!bins) throw new Error('PostgreSQL binaries not found under /usr/lib/postgresql/*/bin');
  const ids = isRoot() ? postgresUserIds() : null;
  if (isRoot() && !ids) throw new Error('running as root but there is no "postgres" user');

  const binDir = bins.bin;
  // /tmp is world-traversable; the cluster dir itself belongs to the server's user
  const dir = mkdtempSync('/tmp/breeze-pg-');
  const dataDir = join(dir, 'data');
  const socketDir = join(dir, 'sock');
  mkdirSync(dataDir, { mode: 0o700 });
  mkdirSync(socketDir, { mode: 0o700 });
  if (ids) for (const d of [dir, dataDir, socketDir]) chownSync(d, ids.uid, ids.gid);

  const cleanupDir = () => rmSync(dir, { recursive: true, force: true });
  try {
    const [initCmd, initArgs] = asPostgres(join(bins.bin, 'initdb'), [
      '-D',
      dataDir,
      '-U',
      'postgres',
      '-A',
      'trust',
      '-E',
      'UTF8',
      '--no-sync',
      '--no-instructions',
    ]);
    execFileSync(initCmd, initArgs, { stdio: 'pipe', cwd: dir });
  } catch (err) {
    cleanupDir();
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`initdb failed: ${stderr || String(err)}`);
  }

  interface Running {
    child: ChildProcess;
    pid: number;
  }

  /** Starts the postmaster on `port`; null when the port was taken. Throws on other failures. */
  async function launch(port: number): Promise<Running | null> {
    const [cmd, args] = asPostgres(join(binDir, 'postgres'), [
      '-D',
      dataDir,
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-k',
      socketDir,
      // a test database need not survive a power cut
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=200',
    ]);
    const child = spawn(cmd, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout?.on('data', (d) => {
      log += d;
    });
    child.stderr?.on('data', (d) => {
      log += d;
    });
    let exited = false;
    child.once('exit', () => {
      exited = true;
    });
    const deadline = Date.now() + 30_000;
    while (!exited && Date.now() < deadline && !log.includes('ready to accept connections')) await sleep(50);
    if (log.includes('ready to accept connections') && !exited) {
      // runuser sits between us and the postmaster: signal the postmaster itself, by its pid file
      const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return { child, pid };
    }
    // killing runuser would orphan the postmaster: stop the postmaster if it got that far
    try {
      const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGQUIT');
    } catch {
      // no pid file: it never started
    }
    if (!exited) child.kill('SIGKILL');
    if (log.includes('could not bind') || log.includes('Address already in use')) return null;
    throw new Error(`postgres did not start:\n${log}`);
  }

  async function shutdown(r: Running): Promise<void> {
    const exited = new Promise<void>((resolve) => {
      if (r.child.exitCode !== null || r.child.signalCode !== null) resolve();
      else r.child.once('exit', () => resolve());
    });
    try {
      process.kill(r.pid, 'SIGINT'); // fast shutdown: disconnects clients, then exits
    } catch {
      // already gone
    }
    const timedOut = await Promise.race([exited.then(() => false), sleep(15_000).then(() => true)]);
    if (timedOut) {
      try {
        process.kill(r.pid, 'SIGQUIT');
      } catch {
        // already gone
      }
    }
    await exited;
  }

  let running: Running | null = null;
  let port = 0;
  try {
    // a free port may be taken between probing and binding: retry a few times
    for (let attempt = 0; attempt < 5 && !running; attempt++) {
      port = await freePort();
      running = await launch(port);
    }
    if (!running) throw new Error('postgres could not bind a free port');
  } catch (err) {
    cleanupDir();
    throw err;
  }

  // the test process exits without stop() (a crash, a failed hook): leave no server behind
  const emergencyStop = () => {
    try {
      if (running) process.kill(running.pid, 'SIGQUIT');
    } catch {
      // already gone
    }
    try {
      cleanupDir();
    } catch {
      // the server may still be writing as it dies; /tmp gets the rest
    }
  };
  process.once('exit', emergencyStop);

  const url = (dbName = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${dbName}`;
  const admin = new pg.Pool({ connectionString: url(), max: 2 });
  admin.on('error', () => {});

  let stopped = false;
  return {
    get port() {
      return port;
    },
    version: bins.version,
    url,
    async createDatabase(name, opts = {}) {
      if (!DB_NAME.test(name)) throw new Error(`not a safe database name: ${name}`);
      const icu = opts.icuLocale
        ? ` TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '${opts.icuLocale.replace(/[^A-Za-z0-9_-]/g, '')}' LOCALE 'C.UTF-8'`
        : '';
      await admin.query(`CREATE DATABASE "${name}"${icu}`);
      return url(name);
    },
    async query(text, values) {
      const res = await admin.query(text, values);
      return res.rows;
    },
    async restart(opts = {}) {
      if (stopped || !running) throw new Error('the server is stopped');
      await shutdown(running);
      running = null;
      if (opts.downMs) await sleep(opts.downMs);
      for (let attempt = 0; attempt < 20 && !running; attempt++) {
        running = await launch(port);
        if (!running) await sleep(250);
      }
      if (!running) throw new Error(`postgres could not bind port ${port} again`);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await admin.end().catch(() => {});
      if (running) await shutdown(running);
      running = null;
      process.removeListener('exit', emergencyStop);
      cleanupDir();
    },
  };
}

let counter = 0;
/** A database name unique within this process, for one test file or test. */
export function uniqueDbName(prefix = 'breeze'): string {
  counter += 1;
  return `${prefix}_${process.pid}_${counter}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
}
