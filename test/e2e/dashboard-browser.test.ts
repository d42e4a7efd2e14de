/**
 * Issue 17: the dashboard in a real (headless Debian) Chromium against a real server on port 0:
 * create a key, copy it, use it against the API, rotate, disable, enable, delete; sign out
 * everywhere; a viewer sees only what the role allows; the same flows with JavaScript off; one flow
 * by keyboard only; axe-core on every page (no serious or critical violation). Screenshots of each
 * page go to docs/screenshots/.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../../src/server/serve.js';
import { chromiumAvailable, launchChromium, signInPage } from '../helpers/browser.js';
import { requirePart } from '../helpers/require.js';
import { type Receiver, startReceiver } from '../helpers/webhook-receiver.js';

const skip = requirePart('Chromium', chromiumAvailable(), '/usr/bin/chromium is not installed');
const SHOTS = join(import.meta.dirname, '..', '..', 'docs', 'screenshots');
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

describe.skipIf(skip)('the dashboard in a real browser', { timeout: 180_000 }, () => {
  let server: RunningServer;
  let dataDir: string;
  let browser: Browser;
  let rx: Receiver;
  const checked = new Set<string>();

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'breeze-e2e-dashboard-'));
    server = await startServer({
      host: '127.0.0.1',
      port: 0,
      dataDir,
      logger: false,
      // the webhook of the round-2 test points at a receiver on loopback
      config: { allowPrivateWebhooks: true },
    });
    rx = await startReceiver();
    browser = await launchChromium();
    mkdirSync(SHOTS, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await rx?.close();
    rmSync(dataDir, { recursive: true, force: true });
    console.log(`[axe] pages checked: ${[...checked].sort().join(', ')}`);
  });

  async function newContext(o: { js?: boolean; dark?: boolean } = {}): Promise<BrowserContext> {
    const context = await browser.newContext({
      javaScriptEnabled: o.js ?? true,
      colorScheme: o.dark ? 'dark' : 'light',
      viewport: { width: 1200, height: 860 },
    });
    // a stuck step fails with its own stack, well before the test's timeout
    context.setDefaultTimeout(20_000);
    // the dashboard's confirm dialogs (JS on): accept them, as a user who meant it
    context.on('page', (p) => p.on('dialog', (d) => void d.accept()));
    return context;
  }

  /** Opens `/` signed out, signs in (the code from the dev outbox), lands on /keys. */
  async function signIn(context: BrowserContext, email: string): Promise<Page> {
    const page = await context.newPage();
    await page.goto(`${server.url}/`);
    await signInPage(page, join(dataDir, 'outbox'), email, /\/keys/);
    return page;
  }

  /**
   * axe-core on the page as it stands: no serious or critical violation. It runs as script in the
   * page, so only in contexts with JavaScript on (the markup is the same without).
   */
  async function axe(page: Page, name: string): Promise<void> {
    // evaluated through the DevTools protocol: the page's CSP (no inline script) stays as it is
    await page.evaluate(AXE);
    const violations = (await page.evaluate(
      `axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations)`,
    )) as AxeViolation[];
    const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    expect(
      bad.map(
        (v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`,
      ),
      `axe on ${name}`,
    ).toEqual([]);
    checked.add(name);
  }

  async function shot(page: Page, name: string): Promise<void> {
    // a plaintext key never goes into a committed picture, even a dead test server's
    const secrets = page.locator('#new-key');
    await page.screenshot({
      path: join(SHOTS, `${name}.png`),
      fullPage: true,
      mask: (await secrets.count()) ? [secrets] : [],
      maskColor: '#c9d3ea',
    });
  }

  async function api(apiKey: string): Promise<number> {
    const res = await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${apiKey}` } });
    await res.arrayBuffer();
    return res.status;
  }

  /** Creates a key on /keys/new; returns the plaintext shown once, and the key's page URL. */
  async function createKey(
    page: Page,
    name: string,
    scopes: string[],
    query = '',
  ): Promise<{ apiKey: string; keyUrl: string }> {
    await page.goto(`${server.url}/keys/new${query}`);
    await page.fill('#name', name);
    for (const s of ['read', 'write', 'admin']) {
      const box = page.locator(`input[name=scopes][value=${s}]`);
      if (scopes.includes(s)) await box.check();
      else if (await box.isEnabled()) await box.uncheck();
    }
    await page.selectOption('#expires_in_s', String(30 * 86400));
    await page.click('button[type=submit]:has-text("Create key")');
    await page.locator('#new-key').waitFor();
    const apiKey = (await page.locator('#new-key').textContent())?.trim() ?? '';
    expect(apiKey).toMatch(/^brz_/);
    const keyUrl = (await page.locator('a:has-text("I saved it")').getAttribute('href')) ?? '';
    return { apiKey, keyUrl };
  }

  /** The page's HTML once it stopped navigating. */
  async function settledContent(page: Page): Promise<string> {
    for (let i = 0; ; i++) {
      try {
        await page.waitForLoadState('load');
        return await page.content();
      } catch (err) {
        if (i >= 20) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** The whole key life cycle through the pages; `js` says whether the copy button and dialogs exist. */
  async function lifeCycle(page: Page, js: boolean, tag: string): Promise<void> {
    const { apiKey, keyUrl } = await createKey(page, `deploy bot ${tag}`, ['read', 'write']);
    if (js) {
      await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
      await page.click('button[data-copy=new-key]');
      await expect.poll(() => page.locator('#copy-status').textContent()).toBe('Copied');
      expect(await page.evaluate('navigator.clipboard.readText()')).toBe(apiKey);
    } else {
      // without JavaScript there is no copy button; the key is selectable text
      expect(await page.locator('button[data-copy=new-key]').isVisible()).toBe(false);
    }
    expect(await api(apiKey)).toBe(200);
    // back and reload never show the plaintext again
    await page.goto(`${server.url}${keyUrl}`);
    // the answer to the POST is not cached (no-store): Chromium has nothing to go back to but an error page
    await page.goBack().catch(() => null);
    expect(await settledContent(page)).not.toContain(apiKey);
    await page.goto(`${server.url}${keyUrl}`);
    expect(await page.content()).not.toContain(apiKey);

    // rotate with a one-hour grace: the new plaintext once, both keys work meanwhile
    await page.selectOption('#grace', '3600');
    await page.click('button:has-text("Rotate key")');
    const rotated = (await page.locator('#new-key').textContent())?.trim() ?? '';
    expect(rotated).toMatch(/^brz_/);
    expect(rotated).not.toBe(apiKey);
    expect(await api(rotated)).toBe(200);
    expect(await api(apiKey)).toBe(200);
    await page.click('a:has-text("I saved it")');

    // disable: refused at once; enable: works again
    await page.click('button:has-text("Disable key")');
    await expect.poll(() => page.locator('.flash').textContent()).toContain('is disabled');
    expect(await api(rotated)).toBe(401);
    await page.click('button:has-text("Enable key")');
    await expect.poll(() => page.locator('.flash').textContent()).toContain('enabled again');
    expect(await api(rotated)).toBe(200);

    // delete behind a confirmation page that names the key (works without JavaScript)
    await page.click('a:has-text("Delete key…")');
    expect(await page.locator('h1').textContent()).toBe(`Delete the key “deploy bot ${tag}”?`);
    await page.click('button:has-text("for good")');
    await expect.poll(() => page.locator('.flash').textContent()).toContain(`Deleted “deploy bot ${tag}”`);
    expect(await api(rotated)).toBe(401);
  }

  it('with JavaScript: create, copy, use, rotate, disable, enable, delete; axe and screenshots on every page', async () => {
    const context = await newContext();
    const page = await signIn(context, 'dana@example.com');
    await axe(page, 'keys (empty)');
    await shot(page, 'keys-empty');
    await page.goto(`${server.url}/keys/new`);
    await axe(page, 'key new');
    await shot(page, 'key-new');
    const { apiKey, keyUrl } = await createKey(page, 'billing service', ['read', 'write']);
    await axe(page, 'key created');
    await shot(page, 'key-created');
    expect(await api(apiKey)).toBe(200);
    await page.goto(`${server.url}/keys`);
    await axe(page, 'keys');
    await shot(page, 'keys');
    await page.goto(`${server.url}${keyUrl}`);
    await axe(page, 'key detail');
    await shot(page, 'key');
    await page.goto(`${server.url}${keyUrl}/delete`);
    await axe(page, 'key delete confirmation');
    await shot(page, 'key-delete');
    await page.goto(`${server.url}/account`);
    await axe(page, 'account');
    await shot(page, 'account');
    await page.click('nav a:has-text("Organization")');
    await axe(page, 'organization');
    await shot(page, 'org');
    await lifeCycle(page, true, 'js');
    // the system's colour scheme decides: light here, dark below
    const brightness = async (p: Page) => {
      const bg = String(await p.evaluate('getComputedStyle(document.body).backgroundColor'));
      const [r = 0, g = 0, b = 0] = (bg.match(/\d+/g) ?? []).map(Number);
      return (r + g + b) / 3;
    };
    expect(await brightness(page)).toBeGreaterThan(160);
    await context.close();

    const dark = await newContext({ dark: true });
    const darkPage = await signIn(dark, 'dana@example.com');
    expect(await brightness(darkPage)).toBeLessThan(90);
    await axe(darkPage, 'keys (dark)');
    await shot(darkPage, 'keys-dark');
    await dark.close();
  });

  it('round 2: usage chart and events of a key, the audit log, webhooks and OIDC trusts; axe and screenshots', async () => {
    const context = await newContext();
    const page = await signIn(context, 'olu@example.com');
    const { apiKey, keyUrl } = await createKey(page, 'reports service', ['read', 'write', 'admin']);
    for (let i = 0; i < 12; i++) expect(await api(apiKey)).toBe(200);
    await page.goto(`${server.url}/keys`);
    await expect.poll(() => page.locator('td.num').first().textContent()).toBe('12');
    await page.goto(`${server.url}${keyUrl}`);
    await page.fill('#name', 'reports service (prod)');
    await page.click('button:has-text("Rename")');
    await expect.poll(() => page.locator('.flash').textContent()).toContain('Renamed');
    const chart = page.locator('svg.chart[role=img]');
    expect(await chart.getAttribute('aria-labelledby')).toBe('usage-title usage-desc');
    expect(await page.locator('#usage-desc').textContent()).toMatch(/^12 requests in the last 7 days/);
    expect(await page.locator('#h-events ~ div table tbody tr').count()).toBeGreaterThanOrEqual(2);
    await axe(page, 'key with usage and events');
    await shot(page, 'key-usage');
    await page.click('a:has-text("30 days by day")');
    await expect.poll(() => page.locator('#usage-title').textContent()).toContain('per day');
    await axe(page, 'key usage by day');

    await page.click('nav a:has-text("Audit log")');
    await expect.poll(() => page.locator('h1').textContent()).toBe('Audit log');
    expect(await page.locator('tbody tr').count()).toBeGreaterThanOrEqual(2);
    await axe(page, 'audit log');
    await shot(page, 'audit');
    await page.selectOption('#action', 'key.updated');
    await page.click('button:has-text("Apply")');
    await expect.poll(() => page.url()).toContain('action=key.updated');
    expect(await page.locator('tbody tr').count()).toBe(1);

    await page.click('nav a:has-text("Organization")');
    await page.fill('#webhook-url', `${rx.url}/breeze`);
    await page.click('button:has-text("Add webhook")');
    await expect.poll(() => page.locator('.flash').textContent()).toContain('Webhook added');
    await page.click('button:has-text("Send test ping")');
    await expect.poll(() => page.locator('.flash').textContent()).toContain('Test ping queued');
    await expect
      .poll(() => rx.received.some((h) => JSON.parse(h.raw).type === 'ping'), { timeout: 10_000 })
      .toBe(true);
    await page.fill('#oidc-issuer', 'https://token.actions.githubusercontent.com');
    await page.fill('#oidc-claims', 'repository=acme/reports\nref=refs/heads/main');
    await page.click('button:has-text("Add trust")');
    await expect.poll(() => page.locator('.flash').textContent()).toContain('Trust added');
    await page.reload();
    await page.locator('#h-webhooks ~ article details summary').first().click();
    await axe(page, 'organization with webhooks and OIDC trusts');
    await shot(page, 'org-platform');
    await context.close();
  });

  it('with JavaScript off: the same key life cycle works by forms alone', async () => {
    const context = await newContext({ js: false });
    const page = await signIn(context, 'nojs@example.com');
    await lifeCycle(page, false, 'nojs');
    // (axe needs script in the page: it runs in the JavaScript contexts, on the same markup)
    await context.close();
  });

  it('sign out everywhere: the other browser session stops working too', async () => {
    for (const js of [true, false]) {
      const email = `everywhere-${js ? 'js' : 'nojs'}@example.com`;
      const a = await newContext({ js });
      const b = await newContext({ js });
      const pageA = await signIn(a, email);
      const pageB = await signIn(b, email);
      await pageA.goto(`${server.url}/account`);
      expect(await pageA.locator('.badge:has-text("this browser")').count()).toBe(1);
      await Promise.all([pageA.waitForURL(/\/login/), pageA.click('button:has-text("Sign out everywhere")')]);
      await pageB.goto(`${server.url}/keys`);
      expect(pageB.url()).toMatch(/\/login\?next=%2Fkeys/);
      await pageA.goto(`${server.url}/keys`);
      expect(pageA.url()).toMatch(/\/login/);
      await a.close();
      await b.close();
    }
  });

  it('a viewer sees only what the role allows', async () => {
    const ownerCtx = await newContext();
    const owner = await signIn(ownerCtx, 'olga@example.com');
    const ownerUser = await server.store.users.findByEmail('olga@example.com');
    const { org } = await server.store.transaction((tx) => tx.orgs.create('Voices Inc', ownerUser?.id ?? ''));
    const viewerUser = await server.store.users.ensure('vic@example.com');
    await server.store.orgs.addMember(org.id, viewerUser.id, 'viewer');
    await createKey(owner, 'team admin key', ['read', 'write', 'admin'], `?org_id=${org.id}`);

    for (const js of [true, false]) {
      const ctx = await newContext({ js });
      const viewer = await signIn(ctx, 'vic@example.com');
      await viewer.goto(`${server.url}/keys?org_id=${org.id}`);
      expect(await viewer.content()).not.toContain('team admin key');
      await viewer.goto(`${server.url}/keys/new?org_id=${org.id}`);
      expect(await viewer.locator('input[name=scopes][value=admin]').isDisabled()).toBe(true);
      expect(await viewer.locator('input[name=scopes][value=write]').isDisabled()).toBe(true);
      expect(await viewer.locator('#scope-cap').textContent()).toContain('Your role in Voices Inc is viewer');
      if (js) await axe(viewer, 'key new (viewer)');
      await viewer.goto(`${server.url}/orgs/${org.id}`);
      expect(await viewer.locator('h2:has-text("Invitations")').count()).toBe(0);
      expect(await viewer.locator('button:has-text("Create project")').count()).toBe(0);
      expect(await viewer.locator('button:has-text("Remove")').count()).toBe(0);
      if (js) await axe(viewer, 'organization (viewer)');
      if (js) await shot(viewer, 'org-viewer');
      await ctx.close();
    }
    await owner.goto(`${server.url}/orgs/${org.id}`);
    expect(await owner.locator('h2:has-text("Invitations")').count()).toBe(1);
    await ownerCtx.close();
  });

  it('keyboard only: open the create form, type, submit, then delete the key', async () => {
    const context = await newContext();
    const page = await signIn(context, 'keys-by-keyboard@example.com');
    /** Tabs until the focused element's text is `label` (at most 60 presses). */
    async function tabTo(label: string): Promise<void> {
      await page.waitForLoadState('load');
      for (let i = 0; i < 60; i++) {
        await page.keyboard.press('Tab');
        const text = await page.evaluate("document.activeElement?.textContent?.trim() ?? ''");
        if (text === label) return;
      }
      throw new Error(`no focusable "${label}"`);
    }
    await tabTo('Create a key');
    await Promise.all([page.waitForURL(/\/keys\/new/), page.keyboard.press('Enter')]);
    // the name field has focus (autofocus); Enter submits the form
    // (autofocus lands once the page is loaded: type only then, or the first keys go nowhere)
    await page.waitForFunction("document.activeElement?.id === 'name'");
    await page.keyboard.type('typed by keyboard');
    await page.keyboard.press('Enter');
    await page.locator('#new-key').waitFor();
    const apiKey = (await page.locator('#new-key').textContent())?.trim() ?? '';
    expect(await api(apiKey)).toBe(200);
    await tabTo('I saved it: show the key');
    await Promise.all([page.waitForURL(/\/keys\/key_/), page.keyboard.press('Enter')]);
    await tabTo('Delete key…');
    await Promise.all([page.waitForURL(/\/delete$/), page.keyboard.press('Enter')]);
    await tabTo('Delete “typed by keyboard” for good');
    await Promise.all([page.waitForURL(/\/keys\?/), page.keyboard.press('Enter')]);
    expect(await api(apiKey)).toBe(401);
    await context.close();
  });
});
