/**
 * `breeze login --no-browser` on the embedded server, on a real terminal (a PTY, so the spinner
 * draws): the device instructions say that a loopback address opens only on this machine and how
 * to forward it over SSH, and a mail line from the embedded server lands on its own line above the
 * spinner instead of being glued to it (issue 10).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { deviceInstructions, loopbackTarget } from '../../src/cli/login/device-instructions.js';
import { BIN, cliEnv, tempConfigDir } from '../helpers/cli.js';
import { ptyAvailable, renderScreen, spawnInPty } from '../helpers/pty.js';
import { requirePart } from '../helpers/require.js';

const cleanups: Array<() => void> = [];
afterAll(() => {
  for (const fn of cleanups) fn();
});

describe.skipIf(requirePart('pty (python3)', ptyAvailable(), 'python3 with the pty module not found'))(
  'device login on a terminal',
  () => {
    it('prints mail above the spinner, and explains the loopback URL with an ssh -L line', async () => {
      const t = tempConfigDir();
      cleanups.push(t.cleanup);
      const env = cliEnv(t.dir, {
        DBUS_SESSION_BUS_ADDRESS: undefined,
        SSH_CONNECTION: '192.0.2.7 50000 198.51.100.9 22',
        USER: 'dev',
        TERM: 'xterm',
      });
      const term = spawnInPty(process.execPath, [BIN, 'login', '--no-browser'], { env, cols: 120 });
      try {
        const [, base, port] = await term.waitFor(/open (http:\/\/127\.0\.0\.1:(\d+))\/device in a browser/);
        await term.waitFor(/Waiting for approval/);
        await new Promise((r) => setTimeout(r, 300)); // a few frames
        const res = await fetch(`${base}/auth/code`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email: 'pty@example.com', type: 'api_key' }),
        });
        expect(res.status).toBeLessThan(300);
        await term.waitFor(/\[embedded server\] mail to pty@example\.com/);
        await new Promise((r) => setTimeout(r, 400)); // the spinner keeps drawing after it
        term.write('\x03');
        expect(await term.exited).toBe(130);

        const screen = renderScreen(term.output());
        const mail = screen.filter((l) => l.includes('[embedded server]'));
        expect(mail, screen.join('\n')).toHaveLength(1);
        expect(mail[0]).toMatch(/^\[embedded server\] mail to pty@example\.com: /);
        expect(screen.filter((l) => /Waiting for approval/.test(l) && /mail to/.test(l))).toEqual([]);

        const text = screen.join('\n');
        expect(text).toMatch(/works only on this machine/);
        expect(text).toContain(`ssh -L ${port}:127.0.0.1:${port} dev@198.51.100.9`);
        expect(text).not.toMatch(/on any device/);
      } finally {
        term.child.kill('SIGKILL');
      }
    });
  },
);

describe('device instructions', () => {
  const start = (uri: string) => ({
    verification_uri: uri,
    verification_uri_complete: `${uri}?user_code=BCDF-GHJK`,
    user_code: 'BCDF-GHJK',
  });

  it('a public server: any device, no SSH advice', () => {
    const lines = deviceInstructions(start('https://breeze.example.com/device'), { USER: 'dev' }, 'box');
    expect(lines.join('\n')).toMatch(/open https:\/\/breeze\.example\.com\/device on any device/);
    expect(lines.join('\n')).not.toMatch(/ssh|only on this machine/);
  });

  it('loopback in every spelling gets the SSH advice with the right port', () => {
    expect(loopbackTarget('http://127.0.0.1:39685/device')).toEqual({ host: '127.0.0.1', port: '39685' });
    expect(loopbackTarget('http://127.1.2.3:8/device')).toEqual({ host: '127.1.2.3', port: '8' });
    expect(loopbackTarget('http://[::1]:4455/device')).toEqual({ host: '[::1]', port: '4455' });
    expect(loopbackTarget('http://localhost/device')).toEqual({ host: 'localhost', port: '80' });
    expect(loopbackTarget('http://127.0.0.1.example.com:1/device')).toBeNull();
    expect(loopbackTarget('http://10.0.0.1:1/device')).toBeNull();
    const lines = deviceInstructions(start('http://[::1]:4455/device'), {}, 'box').join('\n');
    expect(lines).toContain('ssh -L 4455:[::1]:4455 box');
  });
});
