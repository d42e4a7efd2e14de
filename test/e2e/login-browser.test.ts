/**
 * `breeze login` end to end: the built CLI against a real server on port 0, approved or denied by
 * a real (headless) Chromium that signs in with the code from the dev outbox.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../../src/server/serve.js';
import { chromiumAvailable, launchChromium, signInPage } from '../helpers/browser.js';
import { type CliResult, collect, runCli, spawnCli } from '../helpers/cli.js';
import { requirePart } from '../helpers/require.js';

const skip = requirePart('Chromium', chromiumAvailable(), '/usr/bin/chromium is not installed');

describe.skipIf(skip)('breeze login in a real browser', () => {
  let server: RunningServer;
  let dataDir: string;
  let browser: Browser;
  const dirs: string[] = [];
  const timings: Record<string, number[]> = { loopback: [], device: [] };

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'breeze-e2e-server-'));
    server = await startServer({ host: '127.0.0.1', port: 0, dataDir, logger: false });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    rmSync(dataDir, { recursive: true, force: true });
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    for (const [mode, ms] of Object.entries(timings)) {
      if (ms.length)
        console.log(`[timing] ${mode}: Approve click -> key saved: ${ms.map((m) => `${m} ms`).join(', ')}`);
    }
  });

  function configDir(): string {
    const d = mkdtempSync(join(tmpdir(), 'breeze-e2e-cli-'));
    dirs.push(d);
    return join(d, 'config');
  }

  interface LoginRun {
    child: ChildProcess;
    done: Promise<CliResult>;
    /** everything the CLI printed on stderr so far */
    stderr(): string;
  }

  /** Waits until the CLI's stderr (all of it, from the start) matches `pattern`. */
  async function until(run: LoginRun, pattern: RegExp, timeout = 20_000): Promise<string[]> {
    await expect.poll(() => pattern.test(run.stderr()), { timeout, interval: 5 }).toBe(true);
    return [...(pattern.exec(run.stderr()) ?? [])];
  }

  function startLogin(dir: string, extra: string[] = []): LoginRun {
    const child = spawnCli(['--server', server.url, 'login', ...extra], {
      configDir: dir,
      // no real browser launch: the test opens the printed URL in Chromium itself
      env: { BREEZE_BROWSER: 'none', BREEZE_STORAGE: 'file' },
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer | string) => {
      stderr += d.toString();
    });
    return { child, done: collect(child, { timeoutMs: 60_000 }), stderr: () => stderr };
  }

  /** Signs in on the /login page the browser was sent to, reading the mailed code from the outbox. */
  function signIn(page: Page, email: string): Promise<void> {
    return signInPage(page, join(dataDir, 'outbox'), email);
  }

  function storedKey(dir: string): string | undefined {
    const file = join(dir, 'credentials.json');
    if (!existsSync(file)) return undefined;
    const data = JSON.parse(readFileSync(file, 'utf8')) as { credentials: Record<string, string> };
    return Object.values(data.credentials)[0];
  }

  async function me(key: string): Promise<{ status: number; email?: string }> {
    const res = await fetch(`${server.url}/v1/me`, { headers: { 'xi-api-key': key } });
    const body = (await res.json()) as { user?: { email: string } };
    return { status: res.status, email: body.user?.email };
  }

  /** Clicks a decision button; returns the time between the click and the CLI's success line. */
  async function decide(page: Page, run: LoginRun, button: 'Approve' | 'Deny'): Promise<number> {
    const saved = until(run, /Logged in as|denied/i, 30_000);
    const t0 = performance.now();
    await page.click(`button:has-text("${button}")`);
    await saved;
    return Math.round(performance.now() - t0);
  }

  it('loopback mode: sign in, Approve, the CLI stores a working key and the tab says so', async () => {
    const dir = configDir();
    const run = startLogin(dir);
    const [url] = await until(run, /http:\/\/\S+\/device\?user_code=[A-Z]{4}-[A-Z]{4}/);
    const [, userCode] = await until(run, /Your code: ([A-Z]{4}-[A-Z]{4})/);
    expect(url).toContain(userCode);

    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(url ?? '');
    await signIn(page, 'loop@example.com');
    await expect.poll(() => page.textContent('.usercode')).toContain(userCode?.slice(0, 4));
    await expect(page.textContent('body')).resolves.toContain(userCode?.slice(5));

    timings.loopback?.push(await decide(page, run, 'Approve'));
    await page.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/callback\?/);
    await expect(page.textContent('h1')).resolves.toContain('You are logged in');
    const result = await run.done;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/Logged in as loop@example\.com with key brz_\w{8}/);
    expect(result.stderr).toContain('credentials.json');
    const key = storedKey(dir);
    expect(key).toMatch(/^brz_/);
    expect(result.stdout + result.stderr).not.toContain(key);
    expect(await me(key ?? '')).toEqual({ status: 200, email: 'loop@example.com' });
    await context.close();
  });

  it('device mode (--no-browser): type the code, Approve, the CLI polls and stores a working key', async () => {
    const dir = configDir();
    const run = startLogin(dir, ['--no-browser']);
    const [, verificationUri] = await until(run, /open (http:\/\/\S+\/device) in a browser on this machine/);
    const [, userCode] = await until(run, /^\s+([A-Z]{4}-[A-Z]{4})\s*$/m);

    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(verificationUri ?? '');
    await signIn(page, 'device@example.com');
    await page.fill('input[name=user_code]', (userCode ?? '').toLowerCase().replace('-', ''));
    await page.click('button[type=submit]');
    await page.waitForSelector('.usercode');
    await expect(page.textContent('.usercode')).resolves.toContain(userCode?.slice(0, 4));
    await expect(page.textContent('body')).resolves.toContain('another device');

    timings.device?.push(await decide(page, run, 'Approve'));
    await expect(page.textContent('h1')).resolves.toContain('Login approved');
    const result = await run.done;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/Logged in as device@example\.com/);
    const key = storedKey(dir);
    expect(await me(key ?? '')).toEqual({ status: 200, email: 'device@example.com' });
    await context.close();
  });

  it('Deny (both modes): the CLI exits non-zero and stores nothing', async () => {
    for (const mode of [[], ['--no-browser']]) {
      const dir = configDir();
      const run = startLogin(dir, mode);
      const [url] = await until(run, /http:\/\/\S+\/device\?user_code=[A-Z]{4}-[A-Z]{4}/);
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(url ?? '');
      await signIn(page, 'deny@example.com');
      if (mode.length) {
        // device mode: the link only opens the code-entry page; the decision needs the typed code
        await page.fill('input[name=user_code]', new URL(url ?? '').searchParams.get('user_code') ?? '');
        await page.click('button[type=submit]');
        await page.waitForSelector('.usercode');
      }
      await page.click('button:has-text("Deny")');
      await expect.poll(() => page.textContent('h1')).toContain('Login denied');
      const result = await run.done;
      expect(result.code, `${mode} ${result.stderr}`).not.toBe(0);
      expect(result.stderr).toMatch(/denied/i);
      expect(storedKey(dir)).toBeUndefined();
      expect(
        existsSync(join(dir, 'config.json')) ? readFileSync(join(dir, 'config.json'), 'utf8') : '',
      ).not.toContain('key_');
      await context.close();
    }
  });

  it('re-login replaces the stored key and deletes the old one on the server', async () => {
    const dir = configDir();
    const context = await browser.newContext();
    const page = await context.newPage();
    const keys: string[] = [];
    for (let i = 0; i < 2; i++) {
      const run = startLogin(dir);
      const [url] = await until(run, /http:\/\/\S+\/device\?user_code=[A-Z]{4}-[A-Z]{4}/);
      await page.goto(url ?? '');
      if (i === 0) await signIn(page, 'again@example.com');
      await page.waitForSelector('button:has-text("Approve")');
      timings.loopback?.push(await decide(page, run, 'Approve'));
      const result = await run.done;
      expect(result.code, result.stderr).toBe(0);
      keys.push(storedKey(dir) ?? '');
    }
    expect(keys[1]).not.toBe(keys[0]);
    expect((await me(keys[0] ?? '')).status).toBe(401);
    expect((await me(keys[1] ?? '')).status).toBe(200);
    await context.close();
  });

  it('embedded server: the mailed code is shown in the terminal and the key works with the next command', async () => {
    const dir = configDir();
    const child = spawnCli(['login'], {
      configDir: dir,
      env: { BREEZE_BROWSER: 'none', BREEZE_STORAGE: 'file' },
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer | string) => {
      stderr += d.toString();
    });
    const run: LoginRun = { child, done: collect(child, { timeoutMs: 60_000 }), stderr: () => stderr };
    const [url] = await until(run, /http:\/\/127\.0\.0\.1:\d+\/device\?user_code=[A-Z]{4}-[A-Z]{4}/);
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(url ?? '');
    await page.waitForURL(/\/login\?/);
    await page.fill('input[name=email]', 'embedded@example.com');
    await Promise.all([page.waitForURL(/\/login$/), page.click('button[type=submit]')]);
    await expect(page.textContent('body')).resolves.toContain('also shown in your terminal');
    const [, code] = await until(run, /Your Breeze code: ([0-9A-Z]{8})/);
    await page.fill('input[name=code]', code ?? '');
    await Promise.all([page.waitForURL(/\/device/), page.click('button[type=submit]')]);
    await page.click('button:has-text("Approve")');
    const result = await run.done;
    expect(result.code, result.stderr).toBe(0);
    await context.close();

    const status = await runCli(['status', '--json'], { configDir: dir, env: { BREEZE_STORAGE: 'file' } });
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ valid: true, user: { email: 'embedded@example.com' } });
  });

  it('Ctrl-C while waiting exits 130 and leaves nothing behind', async () => {
    const dir = configDir();
    const run = startLogin(dir);
    await until(run, /Your code: /);
    run.child.kill('SIGINT');
    const result = await run.done;
    expect(result.code).toBe(130);
    expect(storedKey(dir)).toBeUndefined();
  });
});
