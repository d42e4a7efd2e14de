/**
 * Device-mode phishing in a real (headless) Chromium against a real server (issue 10, item 1): an
 * attacker on another address starts a login without a redirect and sends the victim its
 * `verification_uri_complete`. The signed-in victim who opens it gets no Approve button and no
 * prefilled code; a forged approve from the victim's browser is refused; the attacker's exchange
 * stays pending. Only typing the code shows the Approve page, which says where the request came from.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../../src/server/serve.js';
import { chromiumAvailable, launchChromium, signInPage } from '../helpers/browser.js';
import { requirePart } from '../helpers/require.js';
import { loopbackAliases, rawRequest } from '../reliability/raw-http.js';

const skip = requirePart('Chromium', chromiumAvailable(), '/usr/bin/chromium is not installed');
/** Another source address for the attacker, where the OS allows one (Linux: all of 127/8). */
const ATTACKER_IP = loopbackAliases ? '127.0.0.2' : '127.0.0.1';

describe.skipIf(skip)('device-mode phishing in a real browser', () => {
  let server: RunningServer;
  let dataDir: string;
  let browser: Browser;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'breeze-e2e-phish-'));
    server = await startServer({ host: '127.0.0.1', port: 0, dataDir, logger: false });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** The attacker's login, started from its own address, with names meant to reassure. */
  async function attackerLogin() {
    const verifier = randomBytes(32).toString('base64url');
    const res = await rawRequest(server.url, {
      method: 'POST',
      path: '/v1/cli/logins',
      localAddress: ATTACKER_IP,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256',
        client_name: 'Breeze Security Team',
        hostname: 'breeze-official',
      }),
    });
    expect(res.status).toBe(201);
    const login = JSON.parse(res.body.toString('utf8')) as {
      login_id: string;
      user_code: string;
      verification_uri_complete: string;
    };
    const exchange = async () => {
      const r = await fetch(`${server.url}/v1/cli/logins/${login.login_id}/exchange`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ code_verifier: verifier }),
      });
      return {
        status: r.status,
        body: (await r.json()) as { error?: { code: string }; user?: { email: string } },
      };
    };
    return { ...login, exchange };
  }

  function signIn(page: Page, email: string): Promise<void> {
    return signInPage(page, join(dataDir, 'outbox'), email);
  }

  it('the link shows no Approve and no code; a forged approve is refused; only the typed code leads to Approve', async () => {
    const login = await attackerLogin();
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(login.verification_uri_complete);
    await signIn(page, 'victim@example.com');

    // the victim is signed in and on the linked page: a code-entry form, empty, and a warning
    expect(page.url()).toBe(login.verification_uri_complete);
    expect(await page.locator('button', { hasText: 'Approve' }).count()).toBe(0);
    expect(await page.locator('form[action="/device/approve"]').count()).toBe(0);
    expect(await page.inputValue('input[name=user_code]')).toBe('');
    const linked = (await page.textContent('body')) ?? '';
    expect(linked).toContain('another device');
    expect(linked).not.toContain(login.user_code);
    expect(linked).not.toContain('Breeze Security Team');
    // submitting the form without typing does not get anywhere either (the field is required)
    await page.click('button[type=submit]');
    expect(await page.locator('form[action="/device/approve"]').count()).toBe(0);

    // an approve POST from the victim's browser (its cookie, its valid CSRF token, same origin),
    // without the typed-code step, is refused
    const csrf = await page.inputValue('input[name=csrf]');
    const forged = await context.request.post(`${server.url}/device/approve`, {
      form: { csrf, user_code: login.user_code },
      headers: { origin: server.url },
      maxRedirects: 0,
    });
    expect(forged.status()).toBe(403);
    const pending = await login.exchange();
    expect(pending.status).toBe(400);
    expect(pending.body.error?.code).toBe('AUTHORIZATION_PENDING');

    // typing the code shows the Approve page, which says where the request came from
    await page.fill('input[name=user_code]', login.user_code);
    await page.click('button[type=submit]');
    await page.waitForSelector('button:has-text("Approve")');
    const approvePage = (await page.innerText('main')).replace(/\s+/g, ' ');
    expect(approvePage).toContain('another device');
    expect(approvePage).toContain(`IP address ${ATTACKER_IP}`);
    expect(approvePage).toContain(
      'It says it is “Breeze Security Team” on a computer named “breeze-official”',
    );
    expect(approvePage).toContain('The new key will belong to victim@example.com');
    if (ATTACKER_IP !== '127.0.0.1') {
      expect(await page.locator('.warning[role=alert]').textContent()).toContain(
        `came from IP ${ATTACKER_IP}, but you are at 127.0.0.1`,
      );
    }
    await page.click('button:has-text("Approve")');
    await expect.poll(() => page.textContent('h1')).toContain('Login approved');
    const done = await login.exchange();
    expect(done.status).toBe(200);
    expect(done.body.user?.email).toBe('victim@example.com');
    await context.close();
  });
});
