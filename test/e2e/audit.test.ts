/**
 * `breeze audit` end to end (issue 14): the built CLI against `breeze serve` (SQLite). The table and
 * --json (the API body), filters, usage errors, and --follow: a new event appears once, a transient
 * server error is a warning and not the end, Ctrl-C stops it cleanly.
 */
import type { ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, runCli, seedKeyInDataDir, spawnCli, tempConfigDir, waitForOutput } from '../helpers/cli.js';

const NO_DBUS = { DBUS_SESSION_BUS_ADDRESS: undefined, BREEZE_STORAGE: 'file' };

let tmp: ReturnType<typeof tempConfigDir>;
let serverProc: ChildProcess;
let url: string;
let dataDir: string;
let apiKey: string;

interface Event {
  id: string;
  action: string;
  actor: { type: string; id: string; key_id?: string };
  target: { type: string; id: string };
  ip: string | null;
}

const breeze = (args: string[], server = url) =>
  runCli(['--server', server, ...args], { configDir: tmp.dir, env: NO_DBUS });

async function api(method: string, path: string, body?: object) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { 'xi-api-key': apiKey, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  tmp = tempConfigDir();
  dataDir = join(tmp.dir, '..', 'server-data');
  serverProc = spawnCli(['serve', '--port', '0', '--data-dir', dataDir, '--rate-limit-per-key', '0'], {
    configDir: join(tmp.dir, '..', 'serve-config'),
  });
  serverProc.stdout?.resume();
  url = (await waitForOutput(serverProc, /listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
  apiKey = (await seedKeyInDataDir(dataDir, { email: 'auditor@example.com' })).apiKey;
  const r = await runCli(['--server', url, 'login', '--with-key'], {
    configDir: tmp.dir,
    input: `${apiKey}\n`,
    env: NO_DBUS,
  });
  expect(r.code, r.stderr).toBe(0);
}, 60_000);

afterAll(async () => {
  if (serverProc && serverProc.exitCode === null) {
    const done = new Promise((r) => serverProc.once('exit', r));
    serverProc.kill('SIGTERM');
    await done;
  }
  tmp?.cleanup();
});

describe('breeze audit', () => {
  let keyId: string;

  it('--json prints the API body, newest first; the table shows time, action, actor, target, ip', async () => {
    const created = await breeze(['keys', 'create', '--name', 'ci-deploy', '--json']);
    expect(created.code, created.stderr).toBe(0);
    keyId = (JSON.parse(created.stdout) as { key_id: string }).key_id;
    expect((await breeze(['keys', 'disable', keyId, '--json'])).code).toBe(0);

    const r = await breeze(['audit', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const body = JSON.parse(r.stdout) as { data: Event[]; next_cursor: string | null };
    expect(body.next_cursor).toBeNull();
    expect(body.data.map((e) => [e.action, e.target.id])).toEqual([
      ['key.disabled', keyId],
      ['key.created', keyId],
    ]);
    expect(body.data[1]?.actor).toMatchObject({ type: 'key' });
    expect(body.data[1]?.ip).toBe('127.0.0.1');

    const table = await breeze(['audit']);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TIME\s+ACTION\s+ACTOR\s+TARGET\s+IP$/);
    expect(lines[1]).toMatch(
      new RegExp(
        `^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\s+key\\.disabled\\s+auditor@example\\.com \\(key_\\w+\\)\\s+key ${keyId}\\s+127\\.0\\.0\\.1$`,
      ),
    );
    expect(lines[2]).toContain('key.created');
  });

  it('filters: --action, --key, --since; bad values are usage errors (exit 2)', {
    timeout: 120_000,
  }, async () => {
    const other = await breeze(['keys', 'create', '--name', 'other', '--json']);
    const otherId = (JSON.parse(other.stdout) as { key_id: string }).key_id;
    const json = async (args: string[]) => {
      const r = await breeze(['audit', ...args, '--json']);
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { data: Event[] }).data;
    };
    expect((await json(['--action', 'key.disabled'])).map((e) => e.target.id)).toEqual([keyId]);
    expect((await json(['--key', otherId])).map((e) => e.action)).toEqual(['key.created']);
    expect((await json(['--since', '1h'])).length).toBe(3);
    expect(await json(['--since', new Date(Date.now() + 3600_000).toISOString()])).toEqual([]);
    expect((await json(['--limit', '1'])).length).toBe(1);
    for (const bad of [
      ['--since', 'yesterday'],
      ['--action', 'DROP TABLE'],
      ['--key', 'key/../x'],
      ['--limit', '0'],
    ]) {
      const r = await breeze(['audit', ...bad]);
      expect(r.code, `${bad.join(' ')}: ${r.stderr}`).toBe(2);
    }
    // a well-formed action the server does not know: its 400, in words
    const unknown = await breeze(['audit', '--action', 'key.exploded']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('The server knows no action "key.exploded"');
  });

  it('--follow prints each new event once, survives a 503 with a warning, stops on SIGINT (exit 130)', async () => {
    // a proxy in front of the server that can answer 503 for a while
    let failing = false;
    const proxy: Server = createServer(async (req, res) => {
      if (failing) {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'UNAVAILABLE', message: 'down for a moment' } }));
        return;
      }
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const upstream = await fetch(`${url}${req.url}`, {
        method: req.method,
        headers: Object.fromEntries(
          Object.entries(req.headers).filter(([k]) => !['host', 'connection'].includes(k)),
        ) as Record<string, string>,
        ...(chunks.length ? { body: Buffer.concat(chunks) } : {}),
      });
      res.writeHead(upstream.status, {
        'content-type': upstream.headers.get('content-type') ?? 'text/plain',
      });
      res.end(Buffer.from(await upstream.arrayBuffer()));
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    try {
      const child = spawnCli(
        ['--server', proxyUrl, 'audit', '--follow', '--json', '--interval', '0.2', '--action', 'key.created'],
        // the profile is bound to the real server's URL: the key comes from the environment here
        { configDir: tmp.dir, env: { ...NO_DBUS, BREEZE_API_KEY: apiKey } },
      );
      const done = collect(child, { timeoutMs: 60_000 });
      let out = '';
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
      });
      let err = '';
      child.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
      });
      const events = () => {
        try {
          return out
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Event);
        } catch {
          throw new Error(`not NDJSON: ${out} (stderr: ${err})`);
        }
      };
      const until = async (cond: () => boolean, what: string) => {
        const end = Date.now() + 20_000;
        while (!cond()) {
          if (Date.now() > end) throw new Error(`timed out: ${what}; stdout: ${out}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      // the two key.created events so far, oldest first
      await until(() => events().length >= 2, 'the first events');
      expect(events().map((e) => e.action)).toEqual(['key.created', 'key.created']);

      const a = await api('POST', '/v1/api-keys', { name: 'followed-1' });
      expect(a.status).toBe(201);
      await until(() => events().some((e) => e.target.id === a.body.key_id), 'the new event');

      failing = true;
      const warned = waitForOutput(child, /Could not read the audit log \(HTTP 503\)/, 'stderr', 20_000);
      await warned;
      const b = await api('POST', '/v1/api-keys', { name: 'followed-2' });
      failing = false;
      await until(() => events().some((e) => e.target.id === b.body.key_id), 'the event made while down');
      // a few more polls: nothing twice
      await new Promise((r) => setTimeout(r, 800));
      const ids = events().map((e) => e.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.length).toBe(4);

      child.kill('SIGINT');
      const result = await done;
      // CLI.md "Exit codes": 130 interrupted (Ctrl-C), also for the command whose only way out it is
      expect(result.code, result.stderr).toBe(130);
      expect(result.stderr).not.toContain(apiKey);
    } finally {
      await new Promise((r) => proxy.close(r));
    }
  }, 90_000);

  it('--follow stops (exit 0) once its reader has gone, like tail -f | head', async () => {
    const child = spawnCli(['--server', url, 'audit', '--follow', '--json', '--interval', '0.2'], {
      configDir: tmp.dir,
      env: NO_DBUS,
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.stderr?.resume();
    child.stdin?.end();
    // an event arrives; then the reader closes its end of the pipe
    const first = new Promise((r) => child.stdout!.once('data', r));
    await api('POST', '/v1/api-keys', { name: 'reader-here' });
    await first;
    child.stdout!.destroy();
    // the next event is written to a closed pipe: that must end the run
    for (let i = 0; i < 20 && child.exitCode === null; i++) {
      await api('POST', '/v1/api-keys', { name: `reader-gone-${i}` });
      await new Promise((r) => setTimeout(r, 500));
    }
    const stillRunning = child.exitCode === null && child.signalCode === null;
    if (stillRunning) child.kill('SIGKILL');
    expect(stillRunning, 'audit --follow kept running with nobody reading').toBe(false);
    expect(await exited).toBe(0);
  }, 60_000);
});
