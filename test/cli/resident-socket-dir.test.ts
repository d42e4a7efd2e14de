import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ensureResident, findResident } from '../../src/cli/resident.js';
import { RESIDENT_HEADER, residentPaths } from '../../src/core/resident.js';

/**
 * A config dir too deep for a unix socket path puts the resident server's socket in
 * `$XDG_RUNTIME_DIR/breeze/` (or `<tmp>/breeze-<uid>/`). The server checks that directory is the
 * user's own and private; the CLI must too before it connects and sends its key: a killed server's
 * record still names the socket, and after a reboot or a temp-dir cleanup another user could make
 * the directory first and listen there.
 */
describe('the socket directory outside a deep config dir', () => {
  const cleanups: Array<() => void> = [];
  afterEach(() => {
    vi.unstubAllEnvs();
    for (const fn of cleanups.splice(0)) fn();
  });

  it('is not trusted by the CLI unless it is private', async () => {
    const root = mkdtempSync(join(tmpdir(), 'brz-sd-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const runtime = join(root, 'run');
    mkdirSync(runtime, { mode: 0o700 });
    vi.stubEnv('XDG_RUNTIME_DIR', runtime);
    const configDir = join(root, 'x'.repeat(100));
    const paths = residentPaths(configDir);
    expect(paths.socketDir).toBe(join(runtime, 'breeze'));
    mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
    // someone else's directory (here: one open to others), with a listener that answers like a server
    mkdirSync(paths.socketDir!, { mode: 0o755 });
    chmodSync(paths.socketDir!, 0o755);
    const seen: string[] = [];
    const impostor: Server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers['x-api-key'] ?? ''}`);
      res.setHeader(RESIDENT_HEADER, JSON.stringify({ pid: process.pid, version: '9.9.9', idle_ms: 0 }));
      res.end('{}');
    });
    await new Promise<void>((resolve) => impostor.listen(paths.socket, resolve));
    cleanups.push(() => impostor.close());
    // the record a killed server left behind (its pid alive again: here, this process)
    writeFileSync(
      paths.record,
      JSON.stringify({
        pid: process.pid,
        version: '9.9.9',
        socket: paths.socket,
        url: 'http://127.0.0.1:9',
        started_at: new Date().toISOString(),
      }),
    );

    expect(await findResident(paths)).toBeUndefined();
    await expect(ensureResident(configDir, { version: '9.9.9', env: process.env })).rejects.toThrow(
      /not a private directory/,
    );
    expect(seen).toEqual([]);

    // the user's own private directory: the server there is found
    chmodSync(paths.socketDir!, 0o700);
    expect(await findResident(paths)).toMatchObject({ record: { pid: process.pid } });
    expect(await ensureResident(configDir, { version: '9.9.9', env: process.env })).toMatchObject({
      pid: process.pid,
    });
  });
});
