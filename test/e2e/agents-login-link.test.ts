/**
 * Issue 15, black box (the built CLI against a real server on port 0): two-step login for agents
 * (`login --start --json` / `login --complete [id] [--wait]`), `breeze link` / `unlink` with the
 * precedence of CLI.md and the sources in `status`, and the expiry warnings of status/token/run.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MailMessage } from '../../src/server/mail/mailer.js';
import { OutboxMailer } from '../../src/server/mail/outbox.js';
import { InjectBrowser } from '../helpers/browser.js';
import { collect, runCli, spawnCli, tempConfigDir } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const NO_DBUS = { DBUS_SESSION_BUS_ADDRESS: undefined };
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

let server: TestServer;
let url: string;
const mails: MailMessage[] = [];
const outbox = mkdtempSync(join(tmpdir(), 'breeze-outbox-'));

/** A free loopback port, so the server's public URL (login links, Origin checks) is its real address. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  server = await startTestServer({
    mailer: new OutboxMailer(outbox, undefined, (m) => mails.push(m)),
    config: { publicUrl: url },
  });
  await server.app.listen({ host: '127.0.0.1', port });
});
afterAll(async () => {
  await server.close();
  rmSync(outbox, { recursive: true, force: true });
});

const codeFor = (email: string) => () =>
  [...mails]
    .reverse()
    .find((m) => m.to === email)
    ?.subject.replace('Your Breeze code: ', '');

async function approver(email: string): Promise<InjectBrowser> {
  const b = new InjectBrowser(server.app);
  b.origin = url;
  await b.signIn(email, codeFor(email));
  return b;
}

function cli(
  args: string[],
  dir: string,
  extra: { env?: Record<string, string | undefined>; cwd?: string; input?: string } = {},
) {
  return runCli(['--server', url, ...args], {
    configDir: dir,
    env: { ...NO_DBUS, ...extra.env },
    cwd: extra.cwd,
    input: extra.input,
  });
}

describe('two-step login (login --start / --complete)', () => {
  it('start returns at once with the contract shape; the verifier stays in a 0600 file and nowhere else', async () => {
    const t = tempConfigDir();
    const started = Date.now();
    const r = await cli(['login', '--start', '--json'], t.dir);
    expect(r.code, r.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
    const body = JSON.parse(r.stdout);
    expect(Object.keys(body).sort()).toEqual([
      'expires_at',
      'login_id',
      'user_code',
      'verification_uri_complete',
    ]);
    expect(body.expires_at).toMatch(RFC3339);
    expect(Date.parse(body.expires_at)).toBeGreaterThan(Date.now() + 60_000);
    expect(body.user_code).toMatch(/^[A-Z]{4}-[A-Z]{4}$/);
    expect(body.verification_uri_complete.startsWith(url)).toBe(true);

    const dir = join(t.dir, 'pending-logins');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const files = readdirSync(dir);
    expect(files).toEqual([`${body.login_id}.json`]);
    expect(statSync(join(dir, files[0]!)).mode & 0o777).toBe(0o600);
    const verifier = JSON.parse(readFileSync(join(dir, files[0]!), 'utf8')).code_verifier as string;
    expect(verifier).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    expect(r.stdout + r.stderr).not.toContain(verifier);

    // not approved yet, no --wait: exit 1, says to approve first or pass --wait; verbose trace redacts the verifier
    const early = await cli(['--verbose', 'login', '--complete'], t.dir);
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/not approved yet/i);
    expect(early.stderr).toContain('--wait');
    expect(early.stderr).toContain(body.user_code);
    expect(early.stdout + early.stderr).not.toContain(verifier);
    expect(readdirSync(dir)).toHaveLength(1);

    // a person approves; complete stores the key, removes the file
    const b = await approver('agent@example.com');
    expect((await b.decide(body.user_code, 'approve')).statusCode).toBe(200);
    const done = await cli(['login', '--complete', body.login_id, '--json'], t.dir);
    expect(done.code, done.stderr).toBe(0);
    expect(JSON.parse(done.stdout).user.email).toBe('agent@example.com');
    expect(done.stdout + done.stderr).not.toContain(verifier);
    expect(readdirSync(dir)).toHaveLength(0);
    const status = await cli(['status', '--json'], t.dir);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout).user.email).toBe('agent@example.com');
    // the same login cannot be completed twice
    const again = await cli(['login', '--complete', body.login_id], t.dir);
    expect(again.code).toBe(1);
    t.cleanup();
  });

  it('several pending logins coexist; without an id --complete names them; --wait waits for the approval', async () => {
    const t = tempConfigDir();
    const a = JSON.parse((await cli(['login', '--start', '--json'], t.dir)).stdout);
    const other = JSON.parse((await cli(['--profile', 'other', 'login', '--start', '--json'], t.dir)).stdout);
    const b = JSON.parse((await cli(['login', '--start', '--json'], t.dir)).stdout);
    expect(new Set([a.login_id, b.login_id, other.login_id]).size).toBe(3);
    expect(readdirSync(join(t.dir, 'pending-logins'))).toHaveLength(3);

    const ambiguous = await cli(['login', '--complete'], t.dir);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toContain(a.login_id);
    expect(ambiguous.stderr).toContain(b.login_id);
    expect(ambiguous.stderr).not.toContain(other.login_id);

    // the other profile has exactly one: picked without an id, with --wait while a person approves
    const waiting = spawnCli(['--server', url, '--profile', 'other', 'login', '--complete', '--wait'], {
      configDir: t.dir,
      env: NO_DBUS,
    });
    const result = collect(waiting, { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 1500));
    const browser = await approver('other@example.com');
    expect((await browser.decide(other.user_code, 'approve')).statusCode).toBe(200);
    const waited = await result;
    expect(waited.code, waited.stderr).toBe(0);
    expect(waited.stderr).toContain('other@example.com');

    // a denied one: exit 1, file gone
    expect((await browser.decide(a.user_code, 'deny')).statusCode).toBe(200);
    const denied = await cli(['login', '--complete', a.login_id], t.dir);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/denied/i);
    expect(readdirSync(join(t.dir, 'pending-logins'))).toEqual([`${b.login_id}.json`]);
    // an id of another profile is refused with the command that works
    const wrong = await cli(['--profile', 'third', 'login', '--complete', b.login_id], t.dir);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('--profile default');
    t.cleanup();
  });

  it('--start with --with-key, or --wait without --complete, is a usage error', async () => {
    const t = tempConfigDir();
    expect((await cli(['login', '--start', '--with-key'], t.dir)).code).toBe(2);
    expect((await cli(['login', '--wait'], t.dir)).code).toBe(2);
    expect((await cli(['login', '--complete', 'login_nope'], t.dir)).code).toBe(1);
    t.cleanup();
  });
});

describe('breeze link / unlink', () => {
  async function loggedIn(dir: string, profile: string, email: string, opts: { expiresAt?: string } = {}) {
    const seeded = await server.seedKey({ email, expiresAt: opts.expiresAt });
    const r = await cli(['--profile', profile, 'login', '--with-key'], dir, { input: seeded.apiKey });
    expect(r.code, r.stderr).toBe(0);
    return seeded;
  }

  it('two linked directories use two identities at the same time; precedence flag > env > .breeze.json', async () => {
    const t = tempConfigDir();
    await loggedIn(t.dir, 'alice', 'alice@example.com');
    await loggedIn(t.dir, 'bob', 'bob@example.com');
    const root = mkdtempSync(join(tmpdir(), 'breeze-link-'));
    const da = join(root, 'a');
    const db = join(root, 'b');
    mkdirSync(join(da, 'deep', 'er'), { recursive: true });
    mkdirSync(db);
    expect((await cli(['--profile', 'alice', 'link'], t.dir, { cwd: da })).code).toBe(0);
    expect((await cli(['--profile', 'bob', 'link', '--project', 'default'], t.dir, { cwd: db })).code).toBe(
      0,
    );
    const file = JSON.parse(readFileSync(join(da, '.breeze.json'), 'utf8'));
    expect(file).toEqual({ profile: 'alice', server: url });
    expect(JSON.stringify(file)).not.toMatch(/brz_/);

    // two terminals at once, no flag: each directory's identity (the nearest file up the tree)
    const [ra, rb] = await Promise.all([
      runCli(['status', '--json'], { configDir: t.dir, cwd: join(da, 'deep', 'er'), env: NO_DBUS }),
      runCli(['status', '--json'], { configDir: t.dir, cwd: db, env: NO_DBUS }),
    ]);
    expect(ra.code, ra.stderr).toBe(0);
    expect(rb.code, rb.stderr).toBe(0);
    const sa = JSON.parse(ra.stdout);
    const sb = JSON.parse(rb.stdout);
    expect(sa.user.email).toBe('alice@example.com');
    expect(sb.user.email).toBe('bob@example.com');
    expect(sa.sources).toEqual({ profile: 'link', server: 'link', project: 'default' });
    expect(sa.link_file).toBe(join(da, '.breeze.json'));
    expect(sb.sources.project).toBe('link');
    expect(sb.pinned_project).toBe('default');
    // human status names the file
    const human = await runCli(['status'], { configDir: t.dir, cwd: da, env: NO_DBUS });
    expect(human.stdout).toContain(join(da, '.breeze.json'));

    // environment beats the file, a flag beats the environment
    const env = await runCli(['status', '--json'], {
      configDir: t.dir,
      cwd: da,
      env: { ...NO_DBUS, BREEZE_PROFILE: 'bob' },
    });
    expect(JSON.parse(env.stdout).user.email).toBe('bob@example.com');
    expect(JSON.parse(env.stdout).sources.profile).toBe('env');
    const flag = await runCli(['--profile', 'alice', 'status', '--json'], {
      configDir: t.dir,
      cwd: db,
      env: { ...NO_DBUS, BREEZE_PROFILE: 'bob' },
    });
    expect(JSON.parse(flag.stdout).user.email).toBe('alice@example.com');
    expect(JSON.parse(flag.stdout).sources.profile).toBe('flag');
    // token follows the link too (fast path)
    const tok = await runCli(['token'], { configDir: t.dir, cwd: db, env: NO_DBUS });
    expect(tok.code, tok.stderr).toBe(0);
    const meB = await fetch(`${url}/v1/me`, { headers: { 'xi-api-key': tok.stdout.trim() } });
    expect(((await meB.json()) as { user: { email: string } }).user.email).toBe('bob@example.com');

    // unlink: the directory falls back to the default profile (not logged in here: exit 3)
    const un = await runCli(['unlink'], { configDir: t.dir, cwd: da, env: NO_DBUS });
    expect(un.code).toBe(0);
    expect(() => statSync(join(da, '.breeze.json'))).toThrow();
    const after = await runCli(['--server', url, 'status', '--json'], {
      configDir: t.dir,
      cwd: da,
      env: NO_DBUS,
    });
    expect(after.code).toBe(3);
    rmSync(root, { recursive: true, force: true });
    t.cleanup();
  });

  it('link --profile before that profile logs in pins no server: the saved server of the profile applies later', async () => {
    const t = tempConfigDir();
    const root = mkdtempSync(join(tmpdir(), 'breeze-link-'));
    try {
      // no server chosen anywhere: nothing to pin but the profile (not the "embedded" default)
      const linked = await runCli(['--profile', 'dora', 'link', '--json'], {
        configDir: t.dir,
        cwd: root,
        env: NO_DBUS,
      });
      expect(linked.code, linked.stderr).toBe(0);
      expect(JSON.parse(readFileSync(join(root, '.breeze.json'), 'utf8'))).toEqual({ profile: 'dora' });
      expect(JSON.parse(linked.stdout)).toEqual({ path: join(root, '.breeze.json'), profile: 'dora' });
      // dora logs in to the served Breeze (the flag names it); afterwards the directory uses it
      await loggedIn(t.dir, 'dora', 'dora@example.com');
      const st = await runCli(['status', '--json'], { configDir: t.dir, cwd: root, env: NO_DBUS });
      expect(st.code, st.stderr).toBe(0);
      const s = JSON.parse(st.stdout);
      expect(s.user.email).toBe('dora@example.com');
      expect(s.server).toBe(url);
      expect(s.sources).toEqual({ profile: 'link', server: 'profile', project: 'default' });
    } finally {
      rmSync(root, { recursive: true, force: true });
      t.cleanup();
    }
  });

  it('untrusted .breeze.json: unknown fields ignored with a warning (values never echoed), bad values refused', async () => {
    const t = tempConfigDir();
    await loggedIn(t.dir, 'carol', 'carol@example.com');
    const root = mkdtempSync(join(tmpdir(), 'breeze-link-'));
    const secret = 'brz_notreallyakeybutlooksalot0000000000000000000';
    writeFileSync(
      join(root, '.breeze.json'),
      JSON.stringify({ profile: 'carol', server: url, api_key: secret }),
    );
    const r = await runCli(['status', '--json'], { configDir: t.dir, cwd: root, env: NO_DBUS });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).user.email).toBe('carol@example.com');
    expect(r.stderr).toContain('"api_key"');
    expect(r.stderr).toMatch(/ignor/i);
    expect(r.stdout + r.stderr).not.toContain(secret);

    for (const bad of [
      '{"profile": 7}',
      '{"profile": "../../etc"}',
      '{"server": "file:///etc/passwd"}',
      '[1]',
      'not json',
    ]) {
      writeFileSync(join(root, '.breeze.json'), bad);
      const b = await runCli(['status'], { configDir: t.dir, cwd: root, env: NO_DBUS });
      expect(b.code, bad).toBe(2);
      expect(b.stderr).toContain(join(root, '.breeze.json'));
      expect(b.stderr).toContain('unlink');
    }
    // a checked-out repository cannot send a CI key (BREEZE_API_KEY) to a server of its choosing
    let connections = 0;
    const trap = createServer((sock) => {
      connections++;
      sock.destroy();
    });
    await new Promise<void>((r) => trap.listen(0, '127.0.0.1', () => r()));
    const trapUrl = `http://127.0.0.1:${(trap.address() as AddressInfo).port}`;
    writeFileSync(join(root, '.breeze.json'), JSON.stringify({ server: trapUrl }));
    const ciKey = (await server.seedKey({ email: 'ci@example.com' })).apiKey;
    for (const args of [['status'], ['token'], ['run', '--', 'true']]) {
      const leak = await runCli(args, {
        configDir: t.dir,
        cwd: root,
        env: { ...NO_DBUS, BREEZE_API_KEY: ciKey },
      });
      expect(leak.code, args.join(' ')).toBe(2);
      expect(leak.stderr).toContain('BREEZE_SERVER');
      expect(leak.stdout).not.toContain(ciKey);
    }
    expect(connections).toBe(0);
    // naming the server explicitly is the user's choice
    const ok = await runCli(['status', '--json'], {
      configDir: t.dir,
      cwd: root,
      env: { ...NO_DBUS, BREEZE_API_KEY: ciKey, BREEZE_SERVER: url },
    });
    expect(ok.code, ok.stderr).toBe(0);
    trap.close();

    // a broken file can still be removed
    expect((await runCli(['unlink'], { configDir: t.dir, cwd: root, env: NO_DBUS })).code).toBe(0);
    rmSync(root, { recursive: true, force: true });
    t.cleanup();
  });

  it('expiry within 7 days: status, token (stderr only, stdout the bare key, no network) and run warn', async () => {
    const t = tempConfigDir();
    const soon = new Date(Date.now() + 3 * 86400_000 + 3600_000).toISOString();
    const seeded = await loggedIn(t.dir, 'default', 'exp@example.com', { expiresAt: soon });
    const status = await cli(['status'], t.dir);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stderr).toMatch(/expires in 3 days/);
    // token: the warning comes from stored metadata (the verbose trace shows no request)
    const token = await runCli(['--server', url, '--verbose', 'token'], { configDir: t.dir, env: NO_DBUS });
    expect(token.stderr).not.toMatch(/> (GET|POST)/);
    expect(token.code, token.stderr).toBe(0);
    expect(token.stdout).toBe(`${seeded.apiKey}\n`);
    expect(token.stderr).toMatch(/expires in 3 days/);
    expect(token.stderr).not.toContain(seeded.apiKey);
    const run = await cli(['run', '--', 'true'], t.dir);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/expires in 3 days/);

    // a key with 30 days left: no warning
    const t2 = tempConfigDir();
    await loggedIn(t2.dir, 'default', 'later@example.com', {
      expiresAt: new Date(Date.now() + 30 * 86400_000).toISOString(),
    });
    const quiet = await cli(['token'], t2.dir);
    expect(quiet.stderr).not.toMatch(/expires/);
    t.cleanup();
    t2.cleanup();
  });
});
