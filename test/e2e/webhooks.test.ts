/**
 * Webhooks end to end (issue 14): the built CLI against `breeze serve --allow-private-webhooks` on
 * port 0 (SQLite), with a receiver on loopback. `webhooks create|list|test|deliveries|delete`, their
 * `--json`, exit codes, and a real key.created delivery verified against the served JWKS.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, seedKeyInDataDir, spawnCli, tempConfigDir, waitForOutput } from '../helpers/cli.js';
import { type Receiver, startReceiver, verifyWithJwks } from '../helpers/webhook-receiver.js';

const NO_DBUS = { DBUS_SESSION_BUS_ADDRESS: undefined, BREEZE_STORAGE: 'file' };

let tmp: ReturnType<typeof tempConfigDir>;
let serverProc: ChildProcess;
let url: string;
let dataDir: string;
let rx: Receiver;
let breeze: (args: string[]) => ReturnType<typeof runCli>;

beforeAll(async () => {
  tmp = tempConfigDir();
  dataDir = join(tmp.dir, '..', 'server-data');
  rx = await startReceiver();
  serverProc = spawnCli(
    ['serve', '--port', '0', '--data-dir', dataDir, '--rate-limit-per-key', '0', '--allow-private-webhooks'],
    { configDir: join(tmp.dir, '..', 'serve-config') },
  );
  serverProc.stdout?.resume();
  url = (await waitForOutput(serverProc, /listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
  const seeded = await seedKeyInDataDir(dataDir, { email: 'hooks-owner@example.com' });
  breeze = (args) => runCli(['--server', url, ...args], { configDir: tmp.dir, env: NO_DBUS });
  const r = await runCli(['--server', url, 'login', '--with-key'], {
    configDir: tmp.dir,
    input: `${seeded.apiKey}\n`,
    env: NO_DBUS,
  });
  expect(r.code, r.stderr).toBe(0);
});

afterAll(async () => {
  if (serverProc && serverProc.exitCode === null) {
    const done = new Promise((r) => serverProc.once('exit', r));
    serverProc.kill('SIGTERM');
    await done;
  }
  await rx?.close();
  tmp?.cleanup();
});

async function json<T = Record<string, unknown>>(args: string[]): Promise<T> {
  const res = await breeze([...args, '--json']);
  expect(res.code, `${args.join(' ')}: ${res.stderr}`).toBe(0);
  return JSON.parse(res.stdout) as T;
}

describe('breeze webhooks', { timeout: 120_000 }, () => {
  let hookId = '';

  it('create prints the id (stdout) and --json the created object; list shows it', async () => {
    const created = await json([
      'webhooks',
      'create',
      `${rx.url}/cli`,
      '--events',
      'key.created, key.rotated',
    ]);
    expect(created).toMatchObject({ url: `${rx.url}/cli`, events: ['key.created', 'key.rotated'] });
    hookId = created.id as string;
    expect(hookId).toMatch(/^whk_/);

    const list = await json<{ data: { id: string }[] }>(['webhooks', 'list']);
    expect(list.data.map((h) => h.id)).toContain(hookId);
    const table = await breeze(['webhooks', 'list']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/ID\s+URL\s+EVENTS\s+CREATED/);
    expect(table.stdout).toContain(`${rx.url}/cli`);
    expect(table.stdout).toContain('key.created,key.rotated');
  });

  it('test sends a ping and reports the answer; the body verifies against the served JWKS', async () => {
    const before = rx.received.length;
    const res = await breeze(['webhooks', 'test', hookId]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.trim()).toMatch(/^dlv_/);
    expect(res.stderr).toMatch(/Ping delivered: the receiver answered 200/);
    const got = rx.received[before]!;
    expect(JSON.parse(got.raw)).toMatchObject({ type: 'ping' });
    const jwks = (await (await fetch(`${url}/.well-known/jwks.json`)).json()) as { keys: JWK[] };
    expect(await verifyWithJwks(jwks, got.headers['breeze-signature'], got.raw)).toBe(true);
  });

  it('a key created with the CLI reaches the receiver as key.created', async () => {
    const before = rx.received.length;
    const key = await json(['keys', 'create', '--name', 'hooked']);
    const keyId = (key.key_id ?? (key.key as Record<string, unknown> | undefined)?.key_id) as string;
    expect(keyId).toMatch(/^key_/);
    const deadline = Date.now() + 10_000;
    let hit: (typeof rx.received)[number] | undefined;
    while (!hit && Date.now() < deadline) {
      hit = rx.received.slice(before).find((r) => r.raw.includes(keyId));
      if (!hit) await new Promise((r) => setTimeout(r, 50));
    }
    expect(hit, 'no key.created delivery').toBeDefined();
    expect(JSON.parse(hit!.raw)).toMatchObject({ type: 'key.created', data: { target: { id: keyId } } });
  });

  it('test exits 1 and says why when the receiver refuses; deliveries shows the log', async () => {
    rx.answers.push(500);
    const res = await breeze(['webhooks', 'test', hookId]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/was not delivered: retrying \(attempt 1: answered 500\)/);

    const log = await json<{ data: Record<string, unknown>[] }>(['webhooks', 'deliveries', hookId]);
    expect(log.data[0]).toMatchObject({
      event: 'ping',
      status: 'pending',
      attempts: 1,
      last_status_code: 500,
    });
    expect(typeof log.data[0]!.next_attempt_at).toBe('string');
    const table = await breeze(['webhooks', 'deliveries', hookId]);
    expect(table.stdout).toMatch(/ID\s+EVENT\s+STATUS\s+ATTEMPTS\s+CODE\s+NEXT\s+OUTCOME/);
    expect(table.stdout).toMatch(/ping\s+delivered\s+1\s+200/);
  });

  it('bad input: unknown events are a usage error with the server reason; unknown ids exit 4', async () => {
    const bad = await breeze(['webhooks', 'create', `${rx.url}/x`, '--events', 'key.nonsense']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Unknown event: "key\.nonsense"/);
    const empty = await breeze(['webhooks', 'create', `${rx.url}/x`, '--events', ' , ']);
    expect(empty.code).toBe(2);
    const missing = await breeze(['webhooks', 'delete', 'whk_00000000000000000000000000']);
    expect(missing.code).toBe(4);
  });

  it('delete removes it', async () => {
    const res = await json(['webhooks', 'delete', hookId]);
    expect(res).toEqual({ id: hookId, deleted: true });
    const list = await json<{ data: unknown[] }>(['webhooks', 'list']);
    expect(list.data).toEqual([]);
    const none = await breeze(['webhooks', 'list']);
    expect(none.stderr).toMatch(/No webhooks/);
  });
});
