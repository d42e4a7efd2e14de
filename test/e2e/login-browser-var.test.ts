/**
 * README: on Linux without a display, `breeze login` opens the approve page with the `BROWSER`
 * variable (through xdg-open, as a text browser or a cloud IDE's forwarder expects) instead of
 * falling back to the device code. The "browser" here is a script that records the URL it was given.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../../src/server/serve.js';
import { collect, spawnCli } from '../helpers/cli.js';

describe.skipIf(process.platform !== 'linux')('breeze login with BROWSER and no display', () => {
  let server: RunningServer;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'breeze-browser-var-'));
    server = await startServer({ host: '127.0.0.1', port: 0, dataDir: join(dir, 'data'), logger: false });
  });

  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function login(browser: string | undefined) {
    const opened = join(dir, `opened-${Math.random().toString(36).slice(2)}`);
    const script = join(dir, 'fake-browser.sh');
    // written whole, then renamed: the test polls for the file and reads it at once
    writeFileSync(
      script,
      `#!/bin/sh\nprintf '%s' "$1" > "${opened}.tmp" && mv "${opened}.tmp" "${opened}"\n`,
    );
    chmodSync(script, 0o755);
    const child = spawnCli(['--server', server.url, 'login'], {
      configDir: join(dir, `config-${Math.random().toString(36).slice(2)}`),
      env: {
        BREEZE_STORAGE: 'file',
        DISPLAY: undefined,
        WAYLAND_DISPLAY: undefined,
        SSH_CONNECTION: undefined,
        SSH_TTY: undefined,
        SSH_CLIENT: undefined,
        BROWSER: browser === undefined ? undefined : browser.replace('SCRIPT', script),
      },
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer | string) => {
      stderr += d.toString();
    });
    const done = collect(child, { timeoutMs: 30_000 });
    return { child, done, opened, stderr: () => stderr };
  }

  it('opens the approve page with BROWSER (loopback mode), not the device code', async () => {
    const run = login('SCRIPT');
    await expect.poll(() => existsSync(run.opened), { timeout: 15_000, interval: 20 }).toBe(true);
    const url = readFileSync(run.opened, 'utf8');
    expect(url.startsWith(`${server.url}/`)).toBe(true);
    expect(run.stderr()).not.toMatch(/device code|no graphical display/i);
    run.child.kill('SIGINT');
    expect((await run.done).code).toBe(130);
  });

  it('without BROWSER it falls back to the device code and opens nothing', async () => {
    const run = login(undefined);
    await expect
      .poll(() => /no graphical display/i.test(run.stderr()), { timeout: 15_000, interval: 20 })
      .toBe(true);
    run.child.kill('SIGINT');
    expect((await run.done).code).toBe(130);
    expect(existsSync(run.opened)).toBe(false);
  });
});
