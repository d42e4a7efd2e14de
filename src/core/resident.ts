import { readFileSync } from 'node:fs';
import { type RequestOptions, request } from 'node:http';
import { join } from 'node:path';

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

export const DEFAULT_IDLE_MS = 10 * 60_000;

export interface ResidentPaths {
  dir: string;
  socket: string;
  record: string;
  log: string;
}

export function residentPaths(configDir: string): ResidentPaths {
  const dir = join(configDir, 'server'); // embeddedDataDir: the data directory `breeze serve` uses too
  return {
    dir,
    socket: join(dir, 'breeze.sock'),
    record: join(dir, 'resident.json'),
    log: join(dir, 'resident.log'),
  };
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
