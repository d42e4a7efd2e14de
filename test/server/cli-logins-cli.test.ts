/**
 * The CLI side of `breeze login` in-process: the loopback listener, when to fall back to device
 * mode, and runBrowserLogin(opts, ctx) against a real server on port 0 approved over HTTP.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContext } from '../../src/cli/context.js';
import { browserUnavailableReason, runBrowserLogin } from '../../src/cli/login/browser.js';
import { startLoopbackListener } from '../../src/cli/login/loopback.js';
import { challengeOf, createPkce } from '../../src/cli/login/pkce.js';
import type { Output } from '../../src/cli/ui/output.js';
import type { MailMessage } from '../../src/server/mail/mailer.js';
import { type RunningServer, startServer } from '../../src/server/serve.js';
import { InjectBrowser } from '../helpers/browser.js';

describe('PKCE and browser detection', () => {
  it('makes a 43-character verifier with its S256 challenge', () => {
    const a = createPkce();
    expect(a.verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a.challenge).toBe(challengeOf(a.verifier));
    // RFC 7636 appendix B
    expect(challengeOf('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe(
      'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    );
    expect(createPkce().verifier).not.toBe(a.verifier);
  });

  it('falls back to device mode on SSH, in CI and on Linux without a display (or BROWSER)', () => {
    expect(browserUnavailableReason({ SSH_CONNECTION: '1 2 3 4', DISPLAY: ':0' }, 'linux')).toMatch(/SSH/);
    expect(browserUnavailableReason({ SSH_TTY: '/dev/pts/1' }, 'darwin')).toMatch(/SSH/);
    expect(browserUnavailableReason({ CI: 'true', DISPLAY: ':0' }, 'linux')).toMatch(/CI/);
    expect(browserUnavailableReason({}, 'linux')).toMatch(/display/);
    expect(browserUnavailableReason({ BROWSER: ' ' }, 'linux')).toMatch(/display/);
    // BROWSER names a way to open a URL without a display (xdg-open runs it): honour it
    expect(browserUnavailableReason({ BROWSER: '/usr/bin/w3m' }, 'linux')).toBeNull();
    expect(browserUnavailableReason({ BROWSER: 'x', SSH_TTY: '/dev/pts/1' }, 'linux')).toMatch(/SSH/);
    expect(browserUnavailableReason({ WAYLAND_DISPLAY: 'wayland-0' }, 'linux')).toBeNull();
    expect(browserUnavailableReason({ DISPLAY: ':0', CI: 'false' }, 'linux')).toBeNull();
    expect(browserUnavailableReason({}, 'darwin')).toBeNull();
    expect(browserUnavailableReason({}, 'win32')).toBeNull();
  });
});

describe('loopback listener', () => {
  it('takes only GET /callback with our state, answers the tab, then closes', async () => {
    const listener = await startLoopbackListener('the-state');
    expect(listener.redirectUri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    const ac = new AbortController();
    const waiting = listener.wait(ac.signal);

    const other = await fetch(listener.redirectUri.replace('/callback', '/favicon.ico'));
    expect(other.status).toBe(404);
    const forged = await fetch(`${listener.redirectUri}?code=stolen&state=other`);
    expect(forged.status).toBe(400);
    expect(await forged.text()).toContain('not for this login');

    const tab = fetch(`${listener.redirectUri}?code=abc&state=the-state`);
    const pending = await waiting;
    expect(pending.result).toEqual({ kind: 'code', code: 'abc' });
    pending.respond({ ok: true, title: 'You are logged in', message: 'Signed in as <x@y>.' });
    const res = await tab;
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const page = await res.text();
    expect(page).toContain('You are logged in');
    expect(page).toContain('&#60;x@y&#62;');
    await listener.close();
    await expect(fetch(listener.redirectUri)).rejects.toThrow();
  });

  it('reports a denial and stops waiting when aborted', async () => {
    const listener = await startLoopbackListener('s');
    const tab = fetch(`${listener.redirectUri}?error=access_denied&state=s`);
    const pending = await listener.wait(new AbortController().signal);
    expect(pending.result).toEqual({ kind: 'error', error: 'access_denied' });
    pending.respond({ ok: false, title: 'Login denied', message: 'No key.' });
    expect((await tab).status).toBe(400);
    await listener.close();

    const idle = await startLoopbackListener('s');
    const ac = new AbortController();
    const wait = idle.wait(ac.signal);
    ac.abort(new Error('interrupted'));
    await expect(wait).rejects.toThrow('interrupted');
    await idle.close();
  });
});

describe('runBrowserLogin against a real server', () => {
  let server: RunningServer;
  let dataDir: string;
  const mails: MailMessage[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'breeze-login-server-'));
    server = await startServer({ host: '127.0.0.1', port: 0, dataDir, onMail: (m) => mails.push(m) });
  });
  afterAll(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function capture(): Output & { lines: string[] } {
    const lines: string[] = [];
    const push = (m: string) => {
      lines.push(m);
    };
    return { lines, data: push, json: (v) => push(JSON.stringify(v)), info: push, warn: push, success: push };
  }

  async function context(env: NodeJS.ProcessEnv, openUrl: (url: string) => Promise<boolean>) {
    const configDir = mkdtempSync(join(tmpdir(), 'breeze-login-cli-'));
    dirs.push(configDir);
    const output = capture();
    const ctx = await createContext({ configDir, server: server.url }, { env, output, openUrl });
    return { ctx, output };
  }

  async function signedInBrowser(email: string): Promise<InjectBrowser> {
    const b = new InjectBrowser(server.app);
    b.origin = server.url;
    await b.signIn(email, () =>
      [...mails]
        .reverse()
        .find((m) => m.to === email)
        ?.subject.replace('Your Breeze code: ', ''),
    );
    return b;
  }

  it('loopback: opens the approve page, gets the code on the listener, exchanges it', async () => {
    const browser = await signedInBrowser('cli-loop@example.com');
    const opened: string[] = [];
    const { ctx, output } = await context({ DISPLAY: ':0' }, async (url) => {
      opened.push(url);
      const path = new URL(url);
      const userCode = path.searchParams.get('user_code') ?? '';
      // the "browser": approve, then follow the redirect to the loopback listener
      void browser.decide(userCode, 'approve').then((res) => fetch(String(res.headers.location)));
      return true;
    });
    const result = await runBrowserLogin({ browser: true, name: 'my laptop' }, ctx);
    await ctx.close();
    expect(opened).toHaveLength(1);
    expect(opened[0]).toMatch(/\/device\?user_code=[A-Z]{4}-[A-Z]{4}$/);
    expect(output.lines.join('\n')).toContain(opened[0]);
    expect(output.lines.join('\n')).toMatch(/Your code: [A-Z]{4}-[A-Z]{4}/);
    expect(result.user.email).toBe('cli-loop@example.com');
    expect(result.key).toMatchObject({ name: 'my laptop', created_via: 'cli_login' });
    expect(result.apiKey).toMatch(/^brz_/);
    expect(output.lines.join('\n')).not.toContain(result.apiKey);
  });

  it('over SSH it does not try to open a browser: device mode, polling until approved', async () => {
    let openCalls = 0;
    const { ctx, output } = await context(
      { SSH_CONNECTION: '10.0.0.1 5000 10.0.0.2 22', DISPLAY: ':0' },
      async () => {
        openCalls++;
        return true;
      },
    );
    const login = runBrowserLogin({ browser: true }, ctx);
    await expect.poll(() => output.lines.join('\n'), { timeout: 10_000 }).toMatch(/^\s+[A-Z]{4}-[A-Z]{4}$/m);
    const text = output.lines.join('\n');
    expect(text).toMatch(/SSH session/);
    expect(text).toContain(`${server.url}/device`);
    const userCode = /^\s+([A-Z]{4}-[A-Z]{4})$/m.exec(text)?.[1] ?? '';
    const browser = await signedInBrowser('cli-device@example.com');
    expect((await browser.decide(userCode, 'approve')).statusCode).toBe(200);
    const result = await login;
    await ctx.close();
    expect(openCalls).toBe(0);
    expect(result.user.email).toBe('cli-device@example.com');
  });

  it('BREEZE_BROWSER=none keeps the loopback flow without launching anything; Deny ends it with no key', async () => {
    const browser = await signedInBrowser('cli-deny@example.com');
    const { ctx, output } = await context({ BREEZE_BROWSER: 'none', CI: '1' }, async () => {
      throw new Error('must not launch a browser with BREEZE_BROWSER=none');
    });
    const login = runBrowserLogin({ browser: true }, ctx);
    const failed = login.then(
      () => null,
      (err: Error) => err,
    );
    await expect.poll(() => output.lines.join('\n'), { timeout: 10_000 }).toMatch(/user_code=/);
    const url = /(http:\/\/\S+\/device\?user_code=([A-Z]{4}-[A-Z]{4}))/.exec(output.lines.join('\n'));
    const denied = await browser.decide(url?.[2] ?? '', 'deny');
    expect(denied.statusCode).toBe(303);
    const tab = await fetch(String(denied.headers.location));
    expect(await tab.text()).toContain('Login denied');
    const err = await failed;
    await ctx.close();
    expect(err?.message).toMatch(/denied/i);
    const user = await server.store.users.findByEmail('cli-deny@example.com');
    const keys = await server.store.keys.list(user?.id ?? '', { limit: 10, now: new Date() });
    expect(keys).toHaveLength(0);
  });
});
