/**
 * `breeze keys usage` and `keys create --scopes verify` end to end (issues 13 and 14): the built CLI
 * against `breeze serve` on port 0 (SQLite). The usage route counts what this instance has not
 * flushed yet, so requests made a moment ago show at once.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, seedKeyInDataDir, spawnCli, tempConfigDir, waitForOutput } from '../helpers/cli.js';

const NO_DBUS = { DBUS_SESSION_BUS_ADDRESS: undefined, BREEZE_STORAGE: 'file' };

let tmp: ReturnType<typeof tempConfigDir>;
let other: ReturnType<typeof tempConfigDir>;
let serverProc: ChildProcess;
let url: string;
let dataDir: string;
let keyId: string;

const breeze = (args: string[], env: Record<string, string | undefined> = {}, dir = tmp.dir) =>
  runCli(['--server', url, ...args], { configDir: dir, env: { ...NO_DBUS, ...env } });

beforeAll(async () => {
  tmp = tempConfigDir();
  other = tempConfigDir();
  dataDir = join(tmp.dir, '..', 'server-data');
  serverProc = spawnCli(['serve', '--port', '0', '--data-dir', dataDir], {
    configDir: join(tmp.dir, '..', 'serve-config'),
  });
  serverProc.stdout?.resume();
  url = (await waitForOutput(serverProc, /listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
  const seeded = await seedKeyInDataDir(dataDir, { email: 'usage@example.com' });
  keyId = seeded.keyId;
  const r = await runCli(['--server', url, 'login', '--with-key'], {
    configDir: tmp.dir,
    input: `${seeded.apiKey}\n`,
    env: NO_DBUS,
  });
  expect(r.code, r.stderr).toBe(0);
  const theirs = await seedKeyInDataDir(dataDir, { email: 'someone-else@example.com' });
  const r2 = await runCli(['--server', url, 'login', '--with-key'], {
    configDir: other.dir,
    input: `${theirs.apiKey}\n`,
    env: NO_DBUS,
  });
  expect(r2.code, r2.stderr).toBe(0);
}, 60_000);

afterAll(async () => {
  if (serverProc && serverProc.exitCode === null) {
    const done = new Promise((r) => serverProc.once('exit', r));
    serverProc.kill('SIGTERM');
    await done;
  }
  tmp?.cleanup();
  other?.cleanup();
});

describe('breeze keys usage', () => {
  it('--json prints the API body; requests made just now are counted', async () => {
    for (let i = 0; i < 3; i++) expect((await breeze(['status'])).code).toBe(0);
    const r = await breeze(['keys', 'usage', keyId, '--since', '24h', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const body = JSON.parse(r.stdout) as { data: Array<{ at: string; requests: number; rejected: number }> };
    expect(Object.keys(body)).toEqual(['data']);
    expect(body.data.length).toBeGreaterThanOrEqual(24);
    const total = body.data.reduce((n, b) => n + b.requests, 0);
    // login --with-key's check and the three status runs at least
    expect(total).toBeGreaterThanOrEqual(4);
    for (const b of body.data) expect(b.at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:00:00\.000Z$/);
    const days = await breeze(['keys', 'usage', keyId, '--since', '7d', '--json']);
    const dayRows = JSON.parse(days.stdout).data as Array<{ at: string }>;
    expect(dayRows.length).toBeGreaterThanOrEqual(7);
    expect(dayRows.length).toBeLessThanOrEqual(9);
    expect(dayRows.every((d) => d.at.endsWith('T00:00:00.000Z'))).toBe(true);
    // --granularity overrides the choice made from --since, both ways
    const byDay = await breeze(['keys', 'usage', keyId, '--since', '24h', '--granularity', 'day', '--json']);
    expect(byDay.code, byDay.stderr).toBe(0);
    const byDayRows = JSON.parse(byDay.stdout).data as Array<{ at: string; requests: number }>;
    expect(byDayRows.length).toBeLessThanOrEqual(3);
    expect(byDayRows.every((d) => d.at.endsWith('T00:00:00.000Z'))).toBe(true);
    expect(byDayRows.reduce((n, b) => n + b.requests, 0)).toBeGreaterThanOrEqual(total);
    const byHour = await breeze(['keys', 'usage', keyId, '--since', '7d', '--granularity', 'hour', '--json']);
    expect(byHour.code, byHour.stderr).toBe(0);
    expect((JSON.parse(byHour.stdout).data as unknown[]).length).toBeGreaterThanOrEqual(7 * 24);
  });

  it('draws a bar chart in unicode blocks that fits the terminal width, without colour under NO_COLOR', async () => {
    const r = await breeze(['keys', 'usage', keyId, '--since', '6h'], { COLUMNS: '50', NO_COLOR: '1' });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(6);
    expect(lines.length).toBeLessThanOrEqual(7);
    expect(r.stdout).toMatch(/[█▏▎▍▌▋▊▉]/);
    for (const l of lines) expect([...l].length).toBeLessThanOrEqual(50);
    expect(r.stdout).not.toContain('\u001b[');
    // the busiest hour has the longest bar
    const longest = lines.reduce((a, b) =>
      (b.match(/[█]/g)?.length ?? 0) > (a.match(/[█]/g)?.length ?? 0) ? b : a,
    );
    expect(longest).toMatch(/\d{2}-\d{2} \d{2}:00 █+/);
    expect(r.stderr).toMatch(/requests, \d+ rejected, per hour/);
    const wide = await breeze(['keys', 'usage', keyId, '--since', '6h'], { COLUMNS: '120', NO_COLOR: '1' });
    const wideMax = Math.max(...wide.stdout.split('\n').map((l) => (l.match(/█/g) ?? []).length));
    const narrowMax = Math.max(...lines.map((l) => (l.match(/█/g) ?? []).length));
    expect(wideMax).toBeGreaterThan(narrowMax);
  });

  it('FORCE_COLOR forces colour into a pipe; --no-color and NO_COLOR turn it off again', async () => {
    const args = ['keys', 'list'];
    const forced = await breeze(args, { FORCE_COLOR: '1' });
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout + forced.stderr).toContain('\u001b[');
    for (const [extra, env] of [
      [['--no-color'], { FORCE_COLOR: '1' }],
      [[], { FORCE_COLOR: '1', NO_COLOR: '1' }],
      [[], { FORCE_COLOR: undefined }], // a pipe, nothing set: no colour
    ] as const) {
      const r = await breeze([...extra, ...args], env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout + r.stderr, JSON.stringify({ extra, env })).not.toContain('\u001b[');
    }
  });

  it('keys list shows the requests of the last 24 hours', async () => {
    const r = await breeze(['keys', 'list'], { COLUMNS: '200' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/REQ 24H/);
    const row = r.stdout.split('\n').find((l) => l.startsWith(keyId));
    expect(Number(row?.trim().split(/\s+/).at(-1))).toBeGreaterThanOrEqual(4);
  });

  it("another user's key: exit 4; a bad --since: exit 2", async () => {
    const r = await breeze(['keys', 'usage', keyId, '--json'], {}, other.dir);
    expect(r.code).toBe(4);
    const bad = await breeze(['keys', 'usage', keyId, '--since', 'forever']);
    expect(bad.code).toBe(2);
  });

  it('keys create --scopes verify with the login key; the verify key checks keys and nothing more', async () => {
    const created = await breeze(['keys', 'create', '--name', 'gateway', '--scopes', 'verify', '--json']);
    expect(created.code, created.stderr).toBe(0);
    const body = JSON.parse(created.stdout) as { api_key: string; scopes: string[] };
    expect(body.scopes).toEqual(['read', 'verify']);
    const listed = await runCli(['--server', url, 'keys', 'list', '--json'], {
      configDir: other.dir,
      env: { ...NO_DBUS, BREEZE_API_KEY: body.api_key },
    });
    expect(listed.code).toBe(4);
    const res = await fetch(`${url}/v1/keys/verify`, {
      method: 'POST',
      headers: { 'x-api-key': body.api_key, 'content-type': 'application/json' },
      body: JSON.stringify({ key: 'brz_nope' }),
    });
    expect(await res.json()).toEqual({ valid: false, code: 'MALFORMED' });
  });
});
