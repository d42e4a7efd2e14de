/**
 * `breeze login --email` end to end: the built CLI (bin/breeze.js) against a real server on port 0
 * that sends its mail through a real SMTP server in this process. Spawned with pipes, the CLI is
 * non-interactive: the first run mails the code and exits 2 naming --code, the second finishes.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../../src/server/serve.js';
import { runCli } from '../helpers/cli.js';
import { codeFromSubject, startSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';

const FILE_STORAGE = { BREEZE_STORAGE: 'file' };

describe('breeze login --email against a server with SMTP', () => {
  let smtp: TestSmtpServer;
  let server: RunningServer;
  const dirs: string[] = [];
  let seq = 0;

  beforeAll(async () => {
    smtp = await startSmtpServer();
    const dataDir = mkdtempSync(join(tmpdir(), 'breeze-e2e-email-server-'));
    dirs.push(dataDir);
    server = await startServer({ host: '127.0.0.1', port: 0, dataDir, smtpUrl: smtp.url, logger: false });
  });
  afterAll(async () => {
    await server?.close();
    await smtp?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function configDir(): string {
    const d = mkdtempSync(join(tmpdir(), 'breeze-e2e-email-cli-'));
    dirs.push(d);
    return join(d, 'config');
  }
  const email = () => `e2e.${process.pid}.${++seq}@example.com`;
  const cli = (dir: string, args: string[]) =>
    runCli(['--server', server.url, ...args], { configDir: dir, env: FILE_STORAGE, timeoutMs: 60_000 });

  it('mails a code, exits 2 asking for --code, then logs in with it and saves a working key', async () => {
    const dir = configDir();
    const addr = email();
    const first = await cli(dir, ['login', '--email', addr]);
    expect(first.code, first.stderr).toBe(2);
    expect(first.stderr).toContain('--code');
    expect(first.stdout).toBe('');
    const mail = await smtp.waitForMail((m) => m.envelopeTo.includes(addr));
    expect(mail.subject).toMatch(/^Your Breeze code: [0-9A-Z]{8}$/);
    const code = codeFromSubject(mail.subject);
    expect(mail.text).toContain(code);
    // the pending request is remembered without anything secret in it
    const pending = readFileSync(join(dir, 'pending-email-logins.json'), 'utf8');
    expect(pending).toContain(addr);
    expect(pending).not.toContain(code);

    const second = await cli(dir, ['login', '--email', addr, '--code', code.toLowerCase(), '--json']);
    expect(second.code, second.stderr).toBe(0);
    const saved = JSON.parse(second.stdout) as { user: { email: string }; key_id: string; prefix: string };
    expect(saved.user.email).toBe(addr);
    expect(saved.prefix).toMatch(/^brz_/);
    expect(second.stderr + second.stdout).not.toMatch(/brz_[0-9A-Za-z]{46}/);
    expect(second.stderr).not.toContain(code);
    expect(JSON.parse(readFileSync(join(dir, 'pending-email-logins.json'), 'utf8'))).toEqual({});

    const token = await cli(dir, ['token']);
    expect(token.code).toBe(0);
    const apiKey = token.stdout.trim();
    const me = await fetch(`${server.url}/v1/api-keys/${saved.key_id}`, {
      headers: { 'xi-api-key': apiKey },
    });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({
      key_id: saved.key_id,
      created_via: 'email_code',
      scopes: ['read', 'write', 'admin'],
    });
    const status = await cli(dir, ['status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      valid: true,
      user: { email: addr },
      key_id: saved.key_id,
    });

    // the code was single-use: a replay fails and saves nothing new
    const replay = await cli(dir, ['login', '--email', addr, '--code', code]);
    expect(replay.code).toBe(2);
  });

  it('applies --name and --scopes to the new key; --email may be left out when finishing', async () => {
    const dir = configDir();
    const addr = email();
    expect((await cli(dir, ['login', '--email', addr])).code).toBe(2);
    const code = codeFromSubject((await smtp.waitForMail((m) => m.envelopeTo.includes(addr))).subject);
    const done = await cli(dir, [
      'login',
      '--code',
      code,
      '--name',
      'ci runner',
      '--scopes',
      'read',
      '--json',
    ]);
    expect(done.code, done.stderr).toBe(0);
    const { key_id } = JSON.parse(done.stdout) as { key_id: string };
    const apiKey = (await cli(dir, ['token'])).stdout.trim();
    const key = await (
      await fetch(`${server.url}/v1/api-keys/${key_id}`, { headers: { 'xi-api-key': apiKey } })
    ).json();
    expect(key).toMatchObject({ name: 'ci runner', scopes: ['read'], created_via: 'email_code' });
  });

  it('a wrong code exits 3 and keeps the request; the right one still works', async () => {
    const dir = configDir();
    const addr = email();
    expect((await cli(dir, ['login', '--email', addr])).code).toBe(2);
    const code = codeFromSubject((await smtp.waitForMail((m) => m.envelopeTo.includes(addr))).subject);
    const wrongCode = (code[0] === 'A' ? 'B' : 'A') + code.slice(1);
    const wrong = await cli(dir, ['login', '--email', addr, '--code', wrongCode]);
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toMatch(/wrong code/i);
    expect((await cli(dir, ['status'])).code).toBe(3);
    const right = await cli(dir, ['login', '--email', addr, '--code', code]);
    expect(right.code, right.stderr).toBe(0);
  });

  it('a login whose key cannot be stored fails and leaves no live key on the server', async () => {
    const dir = configDir();
    const addr = email();
    expect((await cli(dir, ['login', '--email', addr])).code).toBe(2);
    const code = codeFromSubject((await smtp.waitForMail((m) => m.envelopeTo.includes(addr))).subject);
    // a credentials "file" the CLI cannot write
    mkdirSync(join(dir, 'credentials.json'), { recursive: true });
    const r = await cli(dir, ['login', '--email', addr, '--code', code]);
    expect(r.code, r.stderr).toBe(1);
    const keyId =
      /The key this login made \((key_\w+)\) could not be stored, so it was deleted on the server\./.exec(
        r.stderr,
      )?.[1];
    expect(keyId, r.stderr).toBeDefined();
    expect(await server.store.keys.get(keyId as string)).toBeUndefined();
    expect(r.stdout + r.stderr).not.toMatch(/brz_[0-9A-Za-z]{46}/);
  });

  it('a login whose new key cannot be read back (GET /v1/me fails) deletes that key', async () => {
    // in front of the server: GET /v1/me answers 500, everything else is passed through
    const proxy = createServer((req, res) => {
      if (req.method === 'GET' && req.url?.startsWith('/v1/me')) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'INTERNAL', message: 'down for this test' } }));
        return;
      }
      const up = request(
        `${server.url}${req.url ?? '/'}`,
        { method: req.method, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const via = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      const dir = configDir();
      const addr = email();
      const run = (args: string[]) =>
        runCli(['--server', via, ...args], { configDir: dir, env: FILE_STORAGE, timeoutMs: 60_000 });
      expect((await run(['login', '--email', addr])).code).toBe(2);
      const code = codeFromSubject((await smtp.waitForMail((m) => m.envelopeTo.includes(addr))).subject);
      const r = await run(['login', '--email', addr, '--code', code]);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stdout + r.stderr).not.toMatch(/brz_[0-9A-Za-z]{46}/);
      // the code made a key; it is gone, and nothing was saved
      const user = await server.store.users.findByEmail(addr);
      expect(user).toBeDefined();
      expect(await server.store.keys.list(user?.id ?? '', { now: new Date(), limit: 10 })).toEqual([]);
      expect(existsSync(join(dir, 'credentials.json'))).toBe(false);
    } finally {
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('without an address, or with --code but no request, exits 2 naming the flag', async () => {
    const dir = configDir();
    const noAddr = await cli(dir, ['login', '--email']);
    expect(noAddr.code).toBe(2);
    expect(noAddr.stderr).toContain('--email <addr>');
    const noRequest = await cli(dir, ['login', '--email', email(), '--code', 'ABCD1234']);
    expect(noRequest.code).toBe(2);
    expect(noRequest.stderr).toContain('--email');
    expect(existsSync(join(dir, 'credentials.json'))).toBe(false);
  });
});

describe('breeze login --email with the embedded server', () => {
  it('shows the dev mail subject and finishes with --code in a second run', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'breeze-e2e-email-embedded-'));
    const dir = join(parent, 'config');
    try {
      const first = await runCli(['login', '--email', 'dev@example.com'], {
        configDir: dir,
        env: FILE_STORAGE,
      });
      expect(first.code, first.stderr).toBe(2);
      const m = /Your Breeze code: ([0-9A-Z]{8})/.exec(first.stderr);
      expect(m, first.stderr).not.toBeNull();
      const second = await runCli(['login', '--email', 'dev@example.com', '--code', m?.[1] as string], {
        configDir: dir,
        env: FILE_STORAGE,
      });
      expect(second.code, second.stderr).toBe(0);
      const status = await runCli(['status', '--json'], { configDir: dir, env: FILE_STORAGE });
      expect(JSON.parse(status.stdout)).toMatchObject({ valid: true, user: { email: 'dev@example.com' } });
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });
});
