import { chmodSync, statSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  ensureSocketDir,
  probeSocket,
  RESIDENT_HEADER,
  type ResidentRecord,
  readRecord,
  residentPaths,
} from '../core/resident.js';
import { ensurePrivateDir, writeFileAtomicSync } from '../credentials/atomic-file.js';

/**
 * The resident local server (docs/architecture.md "Embedded commands"): the embedded server as a
 * background process that CLI commands share. It is `startServer`, as `breeze serve` runs it, on
 * 127.0.0.1 and an ephemeral port (browser pages, the public URL), plus a unix socket inside the
 * 0700 data directory for the CLI. `resident.json` tells commands where it is.
 */

/** How often the server checks that its record is still there and its own. */
const RECORD_CHECK_MS = 1000;

function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {}
}

/**
 * Runs the resident server until it has been idle for `idleMs` (no request in flight, none for that
 * long) or `stop` resolves (SIGTERM/SIGINT, `breeze server stop`). Removes its socket and record on
 * the way out. Throws when another resident server already answers on the socket.
 */
export async function runResidentServer(opts: {
  configDir: string;
  version: string;
  idleMs: number;
  stop: Promise<unknown>;
  log?: (line: string) => void;
}): Promise<void> {
  const paths = residentPaths(opts.configDir);
  const log = opts.log ?? (() => {});
  ensurePrivateDir(paths.dir);
  if (paths.socketDir) ensureSocketDir(paths.socketDir);
  const other = await probeSocket(paths.socket);
  if (other) throw new Error(`a resident server (pid ${other.pid}) already answers on ${paths.socket}`);
  removeQuietly(paths.socket); // stale: nobody answers on it

  const { startServer } = await import('./serve.js');
  const server = await startServer({
    host: '127.0.0.1',
    port: 0,
    dataDir: paths.dir,
    embedded: true,
    logger: false,
  });
  let inflight = 0;
  /** the last request's start or end (what `server status` reports as idle time) */
  let last = Date.now();
  /** the last connection: a command's check connects without a request, then connects again */
  let lastConnection = 0;
  const track = (_req: IncomingMessage, res: ServerResponse) => {
    inflight++;
    last = Date.now();
    res.once('close', () => {
      inflight--;
      last = Date.now();
    });
  };
  server.app.server.on('request', track);
  const sock = createServer((req, res) => {
    const idle = inflight === 0 ? Date.now() - last : 0;
    track(req, res);
    res.setHeader(
      RESIDENT_HEADER,
      JSON.stringify({ pid: process.pid, version: opts.version, idle_ms: idle }),
    );
    server.app.routing(req, res);
  });
  sock.keepAliveTimeout = 5000;
  // A unix socket has no peer address; its clients are processes of this machine's user, i.e.
  // loopback clients: per-IP limits, the requester address of a CLI login and the pages' "same
  // network" check see them as 127.0.0.1, as they saw the in-process server's TCP clients.
  sock.on('connection', (conn) => {
    // a command that just found this server connects again for its request: the idle time does
    // not run out between the two
    lastConnection = Date.now();
    Object.defineProperty(conn, 'remoteAddress', { value: '127.0.0.1', configurable: true });
    Object.defineProperty(conn, 'remoteFamily', { value: 'IPv4', configurable: true });
  });
  let socketIno = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.listen(paths.socket, () => resolve());
    });
    chmodSync(paths.socket, 0o600);
    socketIno = statSync(paths.socket).ino;
  } catch (err) {
    await server.close();
    throw err;
  }
  const record: ResidentRecord = {
    pid: process.pid,
    version: opts.version,
    socket: paths.socket,
    url: server.url,
    started_at: new Date().toISOString(),
  };
  writeFileAtomicSync(paths.record, `${JSON.stringify(record, null, 2)}\n`);
  log(`resident server ${process.pid} (${opts.version}) on ${server.url} and ${paths.socket}`);

  const idle = new Promise<string>((resolve) => {
    const every = Math.max(20, Math.min(Math.floor(opts.idleMs / 4), 30_000));
    const timer = setInterval(() => {
      if (inflight === 0 && Date.now() - Math.max(last, lastConnection) >= opts.idleMs) {
        clearInterval(timer);
        resolve('idle');
      }
    }, every);
    timer.unref();
  });
  // No command can find a server whose record is gone or names another process: its config dir
  // was deleted (a test's or a script's temp dir), or another server took its place. It leaves at
  // once instead of waiting out the idle time.
  const orphaned = new Promise<string>((resolve) => {
    const timer = setInterval(() => {
      if (readRecord(paths.record)?.pid !== process.pid) {
        clearInterval(timer);
        resolve('its record is gone (config dir removed?)');
      }
    }, RECORD_CHECK_MS);
    timer.unref();
  });
  const why = await Promise.race([idle, orphaned, opts.stop.then(() => 'stop requested')]);
  log(`stopping (${why})`);
  // first the record and the socket: no new command connects to a server on its way out
  if (readRecord(paths.record)?.pid === process.pid) removeQuietly(paths.record);
  try {
    // only our own socket: a successor may already listen at the same path
    if (statSync(paths.socket).ino === socketIno) removeQuietly(paths.socket);
  } catch {}
  const sockClosed = new Promise<void>((resolve) => sock.close(() => resolve()));
  sock.closeIdleConnections();
  // then the server: in-flight requests finish, pending mails are written, SQLite is closed
  await Promise.all([sockClosed, server.close()]);
  log('stopped');
}
