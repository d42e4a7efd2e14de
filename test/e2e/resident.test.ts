/**
 * The resident embedded server (docs/architecture.md "Embedded commands"): the first command that
 * needs the embedded server starts it in the background, later commands reuse it over a unix socket,
 * it leaves when idle or told to, and a stale, killed or other-version server is replaced.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureSocketDir, MAX_SOCKET_PATH, residentPaths } from '../../src/core/resident.js';
import { runCli, seedKeyInDataDir, tempConfigDir } from '../helpers/cli.js';

interface Record {
  pid: number;
  version: string;
  socket: string;
  url: string;
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const fn of cleanups.splice(0)) fn();
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A config dir with a key in its embedded server's data dir, passed as BREEZE_API_KEY. */
async function setup(idleMs = 60_000, subdir?: string) {
  const tmp = tempConfigDir();
  const dir = subdir ? join(tmp.dir, subdir) : tmp.dir;
  const { apiKey, keyId } = await seedKeyInDataDir(join(dir, 'server'), {
    scopes: ['read', 'write', 'admin'],
  });
  const env = { BREEZE_API_KEY: apiKey, BREEZE_SERVER_IDLE_MS: String(idleMs), BREEZE_STORAGE: 'file' };
  const paths = {
    record: join(dir, 'server', 'resident.json'),
    socket: residentPaths(dir).socket,
    log: join(dir, 'server', 'resident.log'),
  };
  const record = (): Record => JSON.parse(readFileSync(paths.record, 'utf8')) as Record;
  const exists = (p: string) => {
    try {
      statSync(p);
      return true;
    } catch {
      return false;
    }
  };
  const run = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    runCli(args, { configDir: dir, env: { ...env, ...extra } });
  cleanups.push(() => {
    try {
      const { pid } = record();
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    } catch {}
    tmp.cleanup();
  });
  const status = async () => {
    const r = await run(['status', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ valid: true, key_id: keyId });
    return r;
  };
  return { dir, tmp, apiKey, keyId, paths, record, exists, run, status };
}

describe('resident embedded server', () => {
  it('is started once and shared by later commands, over a 0600 socket; the TCP port carries no resident header', async () => {
    const s = await setup();
    await s.status();
    const first = s.record();
    expect(alive(first.pid)).toBe(true);
    await s.status();
    const keys = await s.run(['keys', 'list', '--json']);
    expect(keys.code, keys.stderr).toBe(0);
    expect(JSON.parse(keys.stdout).data.map((k: { key_id: string }) => k.key_id)).toContain(s.keyId);
    expect(s.record().pid).toBe(first.pid);
    expect(readFileSync(s.paths.log, 'utf8').match(/resident server \d+/g)).toHaveLength(1);
    expect(statSync(s.paths.socket).mode & 0o777).toBe(0o600);
    expect(statSync(s.paths.record).mode & 0o777).toBe(0o600);
    expect(statSync(join(s.dir, 'server')).mode & 0o777).toBe(0o700);
    expect(first.socket).toBe(s.paths.socket);
    // browser pages: the loopback URL serves the same server, without the socket-only header
    const res = await fetch(`${first.url}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-breeze-resident')).toBeNull();

    await new Promise((r) => setTimeout(r, 1200));
    const st = await s.run(['server', 'status', '--json']);
    expect(st.code, st.stderr).toBe(0);
    expect(JSON.parse(st.stdout)).toMatchObject({
      running: true,
      pid: first.pid,
      socket: s.paths.socket,
      url: first.url,
    });
    // idle since the last request (the status command's own connections do not count as one)
    expect(JSON.parse(st.stdout).idle_ms).toBeGreaterThanOrEqual(1000);
  });

  it('clients on the socket count as loopback clients: an anonymous CLI login starts (no 5xx) and is bound to 127.0.0.1', async () => {
    const s = await setup();
    await s.status();
    const body = JSON.stringify({
      code_challenge: 'IiiVzabbQ6iDqjJSnOfbWqQkV7qUhBP0NE02Jjl7DRk',
      code_challenge_method: 'S256',
      client_name: 'breeze/test',
      hostname: 'vm',
    });
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        {
          socketPath: s.paths.socket,
          method: 'POST',
          path: '/v1/cli/logins',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (r) => {
          let text = '';
          r.setEncoding('utf8').on('data', (d: string) => {
            text += d;
          });
          r.on('end', () => resolve({ status: r.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    expect(res.status, res.text).toBe(201);
    // the device page shown to the approving browser (on loopback) says the request is from its own address
    const { verification_uri_complete: link } = JSON.parse(res.text) as { verification_uri_complete: string };
    expect(link.startsWith(s.record().url)).toBe(true);
  });

  it('exits after the idle time and removes its socket and record', async () => {
    const s = await setup(800);
    await s.status();
    const { pid } = s.record();
    await waitUntil('the idle server left', () => !alive(pid));
    expect(s.exists(s.paths.record)).toBe(false);
    expect(s.exists(s.paths.socket)).toBe(false);
    // and the next command starts a new one
    await s.status();
    expect(s.record().pid).not.toBe(pid);
  });

  it('leaves within seconds when its config dir is deleted (a script or test cleaning up its temp dir)', async () => {
    const s = await setup(); // idle time 60 s
    await s.status();
    const { pid } = s.record();
    rmSync(s.dir, { recursive: true, force: true });
    const started = Date.now();
    await waitUntil('the orphaned server left', () => !alive(pid), 10_000);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('a config dir too deep for a unix socket path: the socket lives in a private directory elsewhere, and works', async () => {
    const deep = join('d'.repeat(40), 'e'.repeat(40), 'config');
    const s = await setup(60_000, deep);
    expect(Buffer.byteLength(join(s.dir, 'server', 'breeze.sock'))).toBeGreaterThan(108);
    await s.status();
    await s.status();
    const rec = s.record();
    expect(rec.socket).toBe(s.paths.socket);
    expect(rec.socket.startsWith(s.dir)).toBe(false);
    expect(Buffer.byteLength(rec.socket)).toBeLessThanOrEqual(MAX_SOCKET_PATH);
    expect(statSync(rec.socket).mode & 0o777).toBe(0o600);
    const sockDir = statSync(join(rec.socket, '..'));
    expect(sockDir.mode & 0o777).toBe(0o700);
    expect(sockDir.uid).toBe(process.getuid?.());
    expect(readFileSync(s.paths.log, 'utf8').match(/resident server \d+/g)).toHaveLength(1);
    const stop = await s.run(['server', 'stop', '--json']);
    expect(stop.code, stop.stderr).toBe(0);
    expect(s.exists(rec.socket)).toBe(false);
  });

  it("a socket directory that is not the user's private one is refused", () => {
    const parent = mkdtempSync(join(tmpdir(), 'breeze-sockdir-'));
    cleanups.push(() => rmSync(parent, { recursive: true, force: true }));
    const open = join(parent, 'open');
    mkdirSync(open);
    chmodSync(open, 0o755);
    expect(() => ensureSocketDir(open)).toThrow(/not a private directory/);
    const fresh = join(parent, 'fresh');
    ensureSocketDir(fresh);
    expect(statSync(fresh).mode & 0o777).toBe(0o700);
    ensureSocketDir(fresh); // again: it is ours
  });

  it('`breeze server stop` stops it cleanly; `server status` then says it is not running', async () => {
    const s = await setup();
    await s.status();
    const { pid } = s.record();
    const stop = await s.run(['server', 'stop', '--json']);
    expect(stop.code, stop.stderr).toBe(0);
    expect(JSON.parse(stop.stdout)).toEqual({ stopped: true, pid });
    expect(alive(pid)).toBe(false);
    expect(s.exists(s.paths.record)).toBe(false);
    expect(s.exists(s.paths.socket)).toBe(false);
    const st = await s.run(['server', 'status', '--json']);
    expect(JSON.parse(st.stdout)).toMatchObject({ running: false, pid: null });
    const again = await s.run(['server', 'stop']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/not running/);
  });

  for (const gone of ['no socket file', 'a socket file nobody listens on'] as const) {
    it(`a record whose server is gone but whose pid is alive (${gone}): the command's request is never sent there, a server is started, and a POST succeeds`, async () => {
      const s = await setup();
      await s.status();
      const real = s.record();
      const stop = await s.run(['server', 'stop']);
      expect(stop.code, stop.stderr).toBe(0);
      // the record names a live process that is not a Breeze server (a reused pid, or a server that
      // left after the command read the record)
      const stand = spawn('sleep', ['60'], { stdio: 'ignore' });
      cleanups.push(() => stand.kill('SIGKILL'));
      if (gone === 'a socket file nobody listens on') {
        // a listener killed with SIGKILL leaves its socket file behind
        const holder = spawn(process.execPath, [
          '-e',
          `require('node:net').createServer().listen(${JSON.stringify(s.paths.socket)}, () => console.log('up'))`,
        ]);
        await new Promise((r) => holder.stdout.once('data', r));
        holder.kill('SIGKILL');
        await new Promise((r) => holder.once('exit', r));
        expect(s.exists(s.paths.socket)).toBe(true);
      }
      writeFileSync(s.paths.record, JSON.stringify({ ...real, pid: stand.pid }));
      const created = await s.run(['keys', 'create', '--name', 'after a restart', '--json', '--verbose']);
      expect(created.code, created.stderr).toBe(0);
      expect(JSON.parse(created.stdout)).toMatchObject({ name: 'after a restart' });
      const now = s.record();
      expect(now.pid).not.toBe(stand.pid);
      expect(alive(now.pid)).toBe(true);
      // the stand-in was never signalled: it never answered as a Breeze server
      expect(alive(stand.pid as number)).toBe(true);
      // tried twice, answered once: the first try found no server (never sent), the second went to
      // the new one, under its URL
      const trace = created.stderr;
      expect(trace.match(/^> POST /gm)).toHaveLength(2);
      expect(trace.match(/^< 201 /gm)).toHaveLength(1);
      expect(trace).toContain(`< network error: ${gone === 'no socket file' ? 'ENOENT' : 'ECONNREFUSED'}`);
      expect(trace).toContain(`* again, on ${now.socket}`);
      expect(trace).toContain(`> POST ${now.url}/v1/api-keys`);
    });
  }

  it('a server of another version is stopped and replaced', async () => {
    const s = await setup();
    await s.status();
    const old = s.record();
    writeFileSync(s.paths.record, JSON.stringify({ ...old, version: '0.0.1-old' }));
    await s.status();
    const now = s.record();
    expect(now.pid).not.toBe(old.pid);
    expect(now.version).not.toBe('0.0.1-old');
    await waitUntil('the old server left', () => !alive(old.pid));
  });

  it('a killed server (stale record and socket) is replaced, and a stray socket file too', async () => {
    const s = await setup();
    await s.status();
    const old = s.record();
    process.kill(old.pid, 'SIGKILL');
    await waitUntil('the killed server is gone', () => !alive(old.pid));
    expect(s.exists(s.paths.socket)).toBe(true); // a killed process removes nothing
    await s.status();
    const next = s.record();
    expect(next.pid).not.toBe(old.pid);

    // a socket nobody answers on, no record
    process.kill(next.pid, 'SIGKILL');
    await waitUntil('the second server is gone', () => !alive(next.pid));
    writeFileSync(s.paths.record, '{not json');
    await s.status();
    expect(alive(s.record().pid)).toBe(true);

    // a record of this version naming a live process that is not the server (its pid reused: here
    // a `sleep`), and nobody answering on the socket: not taken for the running server
    const third = s.record();
    process.kill(third.pid, 'SIGKILL');
    await waitUntil('the third server is gone', () => !alive(third.pid));
    const stranger = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      writeFileSync(s.paths.record, JSON.stringify({ ...third, pid: stranger.pid }));
      await s.status();
      expect(s.record().pid).not.toBe(stranger.pid);
      expect(alive(s.record().pid)).toBe(true);
    } finally {
      stranger.kill('SIGKILL');
    }
  });

  it('concurrent first commands start exactly one server', async () => {
    const s = await setup();
    const runs = await Promise.all([1, 2, 3, 4].map(() => s.run(['status', '--json'])));
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ valid: true });
    }
    expect(readFileSync(s.paths.log, 'utf8').match(/resident server \d+/g)).toHaveLength(1);
  });

  it('SIGKILL right after an acknowledged `keys create` loses nothing', async () => {
    const s = await setup();
    const created = await s.run(['keys', 'create', '--name', 'survivor', '--json']);
    expect(created.code, created.stderr).toBe(0);
    const { key_id: keyId } = JSON.parse(created.stdout) as { key_id: string };
    const { pid } = s.record();
    process.kill(pid, 'SIGKILL');
    await waitUntil('the killed server is gone', () => !alive(pid));
    const list = await s.run(['keys', 'list', '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect(s.record().pid).not.toBe(pid);
    expect(JSON.parse(list.stdout).data.map((k: { key_id: string }) => k.key_id)).toContain(keyId);
  });
});
