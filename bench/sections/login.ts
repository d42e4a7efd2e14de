import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Page } from 'playwright-core';
import { chromiumAvailable, latestOutboxCode, launchChromium } from '../../test/helpers/browser.js';
import { cliEnv, cliHas } from '../lib/cli.js';
import { BIN, ROOT } from '../lib/paths.js';
import { figure } from '../lib/report.js';
import { type Section, type SectionContext, SkipSection } from '../lib/section.js';
import { startServerProcess } from '../lib/server.js';
import { median, sleep } from '../lib/stats.js';

type Mode = 'loopback' | 'device';

const EMAIL = 'bench-login@example.com';
const USER_CODE = /[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}/;

interface LoginChild {
  child: ChildProcess;
  stderr(): string;
  exited: Promise<number | null>;
}

function startLogin(serverUrl: string, configDir: string, mode: Mode): LoginChild {
  const args = [BIN, '--server', serverUrl, 'login', ...(mode === 'device' ? ['--no-browser'] : [])];
  // BREEZE_BROWSER=none: the CLI prints the URL instead of launching a browser; the bench opens it
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: cliEnv(configDir, { BREEZE_BROWSER: 'none' }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  child.stdout?.resume();
  child.stdin?.end();
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { child, stderr: () => err, exited };
}

/**
 * Resolves with the first match of `pattern` in the child's stderr (already printed or to come),
 * checked on every chunk as it arrives; rejects when the child exits or time runs out first.
 */
function waitForStderr(run: LoginChild, pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const stream = run.child.stderr!;
    const finish = (err: Error | null, m?: RegExpMatchArray) => {
      clearTimeout(timer);
      stream.off('data', onData);
      run.child.off('close', onClose);
      if (err) reject(err);
      else resolve(m!);
    };
    const onData = () => {
      const m = run.stderr().match(pattern);
      if (m) finish(null, m);
    };
    const onClose = () => {
      const m = run.stderr().match(pattern);
      if (m) finish(null, m);
      else
        finish(new Error(`breeze login exited without printing ${pattern}:\n${run.stderr().slice(0, 1500)}`));
    };
    const timer = setTimeout(
      () =>
        finish(new Error(`breeze login did not print ${pattern} in time:\n${run.stderr().slice(0, 1500)}`)),
      timeoutMs,
    );
    // registered after the 'data' listener that appends, so a chunk is in stderr() when checked
    stream.on('data', onData);
    run.child.once('close', onClose);
    const m = run.stderr().match(pattern);
    if (m) finish(null, m);
    else if (run.child.exitCode !== null) onClose();
  });
}

/**
 * Resolves with the moment (`now()`) at which `<configDir>/credentials.json` first holds
 * an API key: the "key saved" point. Watches the directory (the CLI writes the file to a temporary
 * name and renames it), with a 20 ms poll as a backstop.
 */
function whenKeySaved(configDir: string): { saved: Promise<number>; stop(): void } {
  const file = join(configDir, 'credentials.json');
  let resolveSaved!: (t: number) => void;
  const saved = new Promise<number>((r) => {
    resolveSaved = r;
  });
  let done = false;
  const check = () => {
    if (done) return;
    const t = now();
    try {
      if (/"brz_[0-9A-Za-z]{46}"/.test(readFileSync(file, 'utf8'))) {
        done = true;
        resolveSaved(t);
      }
    } catch {
      // not there yet
    }
  };
  const watcher = watch(configDir, check);
  const poll = setInterval(check, 20);
  return {
    saved,
    stop() {
      done = true;
      watcher.close();
      clearInterval(poll);
    },
  };
}

async function signInIfAsked(page: Page, outboxDir: string): Promise<boolean> {
  if (!/\/login(\?|$)/.test(new URL(page.url()).pathname + new URL(page.url()).search)) return false;
  const before = latestOutboxCode(outboxDir, EMAIL);
  await page.fill('input[name=email]', EMAIL);
  await Promise.all([page.waitForURL(/\/login$/), page.click('button[type=submit]')]);
  let code: string | undefined;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    code = latestOutboxCode(outboxDir, EMAIL);
    if (code && code !== before) break;
    await sleep(20);
  }
  if (!code || code === before) throw new Error('no sign-in code arrived in the dev outbox');
  await page.fill('input[name=code]', code);
  await Promise.all([page.waitForURL(/\/device/), page.click('button[type=submit]')]);
  return true;
}

interface LoginRun {
  mode: Mode;
  /** Approve click (the DOM click event) -> credentials.json holds the key */
  savedMs: number;
  /** Approve click -> the CLI printed its success line */
  printedMs: number;
  /** Approve click -> Chromium reported the approval POST (approx.: CDP event arrival) */
  approvePostMs: number | null;
  /** Approve click -> Chromium reported the redirect to the CLI's loopback listener (loopback mode) */
  callbackMs: number | null;
  /** Playwright's click() call -> the DOM click event: the automation's cost, not the product's */
  automationMs: number;
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable with Chromium's on this machine. */
const now = () => performance.timeOrigin + performance.now();

interface ClickClock {
  /** listens for the next click; `clicked` resolves with its time (a wrapper: not awaited by arm) */
  arm(): Promise<{ clicked: Promise<number> }>;
}

/**
 * Reports the time of the next DOM `click` in the page, taken in the page itself (an exposed
 * binding, which a strict CSP does not block), so the figure starts at the click a person makes
 * rather than at the automation's call.
 */
async function clickClock(page: Page): Promise<ClickClock> {
  let waiter: ((t: number) => void) | null = null;
  await page.exposeFunction('__breezeBenchClick', (t: number) => {
    waiter?.(t);
    waiter = null;
  });
  return {
    async arm() {
      const clicked = new Promise<number>((resolve) => {
        waiter = resolve;
      });
      await page.evaluate(
        "document.addEventListener('click', () => window.__breezeBenchClick(performance.timeOrigin + performance.now()), { capture: true, once: true })",
      );
      return { clicked };
    },
  };
}

async function oneLogin(
  ctx: SectionContext,
  page: Page,
  clock: ClickClock,
  serverUrl: string,
  outboxDir: string,
  configDir: string,
  mode: Mode,
): Promise<LoginRun> {
  // an existing config dir, as after any earlier use of the CLI: lets the bench watch it
  mkdirSync(configDir, { recursive: true, mode: 0o700 });
  const run = startLogin(serverUrl, configDir, mode);
  ctx.cleanup.add(() => {
    if (run.child.exitCode === null) run.child.kill('SIGKILL');
  });
  const [, userCode] = (await waitForStderr(run, new RegExp(`(${USER_CODE.source})`))) as string[];
  if (mode === 'loopback') {
    const [url] = await waitForStderr(run, /http:\/\/\S+\/device\?user_code=\S+/);
    await page.goto(url);
    await signInIfAsked(page, outboxDir);
  } else {
    // device mode: the page a user types the code into
    const [, uri] = (await waitForStderr(run, /(http:\/\/\S+\/device)\s/)) as string[];
    await page.goto(uri!);
    if (await signInIfAsked(page, outboxDir)) await page.waitForSelector('input[name=user_code]');
    await page.fill('input[name=user_code]', userCode!);
    // the typed code's POST answers the approval page itself (at /device: no redirect to wait for)
    await page.click('button[type=submit]');
  }
  const approve = page.locator('button:has-text("Approve")');
  await approve.waitFor();
  const body = (await page.textContent('body')) ?? '';
  if (!body.includes(userCode!.slice(0, 4))) throw new Error(`the approve page does not show ${userCode}`);

  const watcher = whenKeySaved(configDir);
  let approvePostAt: number | null = null;
  let callbackAt: number | null = null;
  const onRequest = (req: { method(): string; url(): string }) => {
    const url = req.url();
    if (req.method() === 'POST' && url.includes('/approve')) approvePostAt ??= now();
    if (url.startsWith('http://127.0.0.1:') && !url.startsWith(serverUrl)) callbackAt ??= now();
  };
  page.on('request', onRequest);
  try {
    const { clicked } = await clock.arm();
    const t0 = now();
    await approve.click();
    const printed = waitForStderr(run, /Logged in as/i, 15_000).then(now, () => Number.NaN);
    const savedAt = await Promise.race([
      watcher.saved,
      sleep(15_000).then(() => {
        throw new Error(
          `the key was not saved within 15 s; the CLI printed:\n${run.stderr().slice(0, 1500)}`,
        );
      }),
    ]);
    const clickAt = await Promise.race([
      clicked,
      sleep(2000).then(() => {
        throw new Error('the page never reported the Approve click');
      }),
    ]);
    const printedAt = await printed;
    const code = await run.exited;
    if (code !== 0) throw new Error(`breeze login exited ${code}:\n${run.stderr().slice(0, 1500)}`);
    return {
      mode,
      savedMs: savedAt - clickAt,
      printedMs: printedAt - clickAt,
      approvePostMs: approvePostAt === null ? null : approvePostAt - clickAt,
      callbackMs: callbackAt === null ? null : callbackAt - clickAt,
      automationMs: clickAt - t0,
    };
  } finally {
    page.off('request', onRequest);
    watcher.stop();
  }
}

/** The saved key works: GET /v1/me with it is 200 for the user who approved. */
async function checkSavedKey(serverUrl: string, configDir: string): Promise<void> {
  const text = readFileSync(join(configDir, 'credentials.json'), 'utf8');
  const key = /"(brz_[0-9A-Za-z]{46})"/.exec(text)?.[1];
  const res = await fetch(`${serverUrl}/v1/me`, { headers: { 'xi-api-key': key ?? '' } });
  const me = (await res.json()) as { user?: { email?: string } };
  if (res.status !== 200 || me.user?.email !== EMAIL)
    throw new Error(`the saved key does not work (${res.status})`);
}

/**
 * `breeze login` as a person does it, in headless Chromium: sign in once (the session cookie then
 * carries over, as in a real browser), then for each login click Approve and time until the key is
 * saved. Loopback and device runs alternate.
 */
export const loginSection: Section = {
  id: 'login',
  title: 'Login latency (Approve click to key saved)',
  budgetSeconds: 150,
  async run(ctx) {
    if (!chromiumAvailable()) throw new SkipSection('/usr/bin/chromium is not installed');
    if (!existsSync(join(ROOT, 'node_modules', 'playwright-core'))) {
      throw new SkipSection('playwright-core is not installed');
    }
    if (!cliHas(['login'], ['--no-browser']))
      throw new SkipSection('the CLI has no "breeze login --no-browser" yet');

    const root = mkdtempSync(join(tmpdir(), 'breeze-bench-login-'));
    ctx.cleanup.add(() => rmSync(root, { recursive: true, force: true }));
    const dataDir = join(root, 'server');
    const server = await startServerProcess({ dataDir, logFile: join(root, 'server.log') });
    ctx.cleanup.add(() => server.stop());
    const browser = await launchChromium();
    ctx.cleanup.add(() => browser.close());
    const context = await browser.newContext();
    const page = await context.newPage();
    const clock = await clickClock(page);

    const runs: LoginRun[] = [];
    const modes: Mode[] = [];
    for (let i = 0; i < ctx.opts.loginRuns; i++) modes.push('loopback', 'device');
    // one untimed login first: Chromium, the pages and both processes warmed up, the user signed in
    const warm = join(root, 'cli-warm');
    await oneLogin(ctx, page, clock, server.url, join(dataDir, 'outbox'), warm, 'loopback');
    await checkSavedKey(server.url, warm);
    for (const [i, mode] of modes.entries()) {
      const configDir = join(root, `cli-${i}`);
      const r = await oneLogin(ctx, page, clock, server.url, join(dataDir, 'outbox'), configDir, mode);
      await checkSavedKey(server.url, configDir);
      ctx.log(`${mode}: saved after ${r.savedMs.toFixed(0)} ms, printed after ${r.printedMs.toFixed(0)} ms`);
      runs.push(r);
      ctx.addRun(r);
    }

    for (const [mode, target, label] of [
      ['loopback', 500, 'breeze login (loopback redirect)'],
      ['device', 1500, 'breeze login --no-browser (device, polling)'],
    ] as const) {
      const mine = runs.filter((r) => r.mode === mode);
      ctx.addFigure(
        figure({
          id: `login.${mode}.saved_median_ms`,
          label: `${label}: click → key saved, median`,
          value: median(mine.map((r) => r.savedMs)),
          unit: 'ms',
          target: { op: '<', value: target },
        }),
      );
      ctx.addFigure(
        figure({
          id: `login.${mode}.saved_max_ms`,
          label: `${label}: click → key saved, worst of ${mine.length}`,
          value: Math.max(...mine.map((r) => r.savedMs)),
          unit: 'ms',
        }),
      );
    }
    const med = (f: (r: LoginRun) => number | null, rs = runs) =>
      median(rs.map(f).filter((x): x is number => x !== null && Number.isFinite(x))).toFixed(0);
    const loop = runs.filter((r) => r.mode === 'loopback');
    ctx.note(
      `${ctx.opts.loginRuns} runs per mode after one untimed login. The clock starts at the DOM click event in ` +
        "the page and stops when credentials.json (BREEZE_STORAGE=file) first holds the new key; the CLI's " +
        `"Logged in as" line followed ${med((r) => r.printedMs - r.savedMs)} ms later (median)`,
    );
    ctx.note(
      `loopback breakdown (medians, approximate): approval POST seen at +${med((r) => r.approvePostMs, loop)} ms, ` +
        `redirect to the CLI's listener at +${med((r) => r.callbackMs, loop)} ms, key saved at ` +
        `+${med((r) => r.savedMs, loop)} ms; Playwright took ${med((r) => r.automationMs)} ms to deliver each click ` +
        '(not counted). Server: breeze serve in a child process, SQLite, dev outbox for the sign-in code',
    );
  },
};
