/**
 * Teams end to end (issue 12): the built CLI against `breeze serve` on port 0 (SQLite, dev outbox).
 * Owner creates an organization, switches to it, creates a project and a key in it by name; invites
 * a developer, who accepts with the code from the mailed .eml; role change narrows the developer's
 * key, removal kills it; conflicts and refusals have the exit codes of CLI.md.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, seedKeyInDataDir, spawnCli, tempConfigDir, waitForOutput } from '../helpers/cli.js';

const NO_DBUS = { DBUS_SESSION_BUS_ADDRESS: undefined, BREEZE_STORAGE: 'file' };

let tmp: ReturnType<typeof tempConfigDir>;
let serverProc: ChildProcess;
let url: string;
let dataDir: string;
const dirs: Array<ReturnType<typeof tempConfigDir>> = [];

beforeAll(async () => {
  tmp = tempConfigDir();
  dataDir = join(tmp.dir, '..', 'server-data');
  serverProc = spawnCli(['serve', '--port', '0', '--data-dir', dataDir, '--rate-limit-per-key', '0'], {
    configDir: join(tmp.dir, '..', 'serve-config'),
  });
  serverProc.stdout?.resume();
  url = (await waitForOutput(serverProc, /listening on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
});

afterAll(async () => {
  if (serverProc && serverProc.exitCode === null) {
    const done = new Promise((r) => serverProc.once('exit', r));
    serverProc.kill('SIGTERM');
    await done;
  }
  for (const d of dirs) d.cleanup();
  tmp?.cleanup();
});

interface User {
  email: string;
  apiKey: string;
  dir: string;
  breeze(args: string[], env?: Record<string, string | undefined>, input?: string): ReturnType<typeof runCli>;
  json<T = Record<string, unknown>>(args: string[]): Promise<T>;
}

/** A user with a key minted in the server's data dir, logged in with --with-key in a fresh config dir. */
async function loggedIn(email: string): Promise<User> {
  const t = tempConfigDir();
  dirs.push(t);
  const seeded = await seedKeyInDataDir(dataDir, { email });
  const breeze = (args: string[], env: Record<string, string | undefined> = {}, input?: string) =>
    runCli(['--server', url, ...args], { configDir: t.dir, env: { ...NO_DBUS, ...env }, input });
  const r = await runCli(['--server', url, 'login', '--with-key'], {
    configDir: t.dir,
    input: `${seeded.apiKey}\n`,
    env: NO_DBUS,
  });
  expect(r.code, r.stderr).toBe(0);
  return {
    email,
    apiKey: seeded.apiKey,
    dir: t.dir,
    breeze,
    async json<T>(args: string[]) {
      const res = await breeze([...args, '--json']);
      expect(res.code, `${args.join(' ')}: ${res.stderr}`).toBe(0);
      return JSON.parse(res.stdout) as T;
    },
  };
}

interface MeBody {
  auth: { scopes: string[] };
}

async function me(apiKey: string): Promise<{ status: number; body: MeBody }> {
  const res = await fetch(`${url}/v1/me`, { headers: { 'xi-api-key': apiKey } });
  return { status: res.status, body: (await res.json()) as MeBody };
}

/** The invitation mail to `to` in the dev outbox: its subject and the 8-character code in its body. */
function invitationMail(to: string, invitationId: string): { subject: string; code: string } {
  const dir = join(dataDir, 'outbox');
  const mails = existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.eml'))
        .map((f) => readFileSync(join(dir, f), 'utf8'))
    : [];
  const mail = mails.find((m) => m.includes(`To: ${to}`) && m.includes(invitationId));
  expect(mail, `no invitation mail to ${to}`).toBeDefined();
  const subject = /^Subject: (.*)$/m.exec(mail!)?.[1] ?? '';
  const body = mail!.slice(mail!.indexOf('\r\n\r\n')).replace(/https?:\/\/\S+/g, '');
  const code = /\b([0-9A-Z]{8})\b/.exec(body)?.[1];
  expect(code, 'no code in the invitation mail').toBeDefined();
  return { subject, code: code! };
}

function config(u: User): { org_id?: string } {
  return JSON.parse(readFileSync(join(u.dir, 'config.json'), 'utf8')).profiles.default;
}

const ORG_ID = /^org_[0-9A-Z]{26}$/;
const PROJ_ID = /^proj_[0-9A-Z]{26}$/;

describe('breeze orgs / projects / members / invitations against a real server', { timeout: 120_000 }, () => {
  let owner: User;
  let dev: User;
  let acme: { id: string; name: string };

  beforeAll(async () => {
    owner = await loggedIn('owner@example.com');
    dev = await loggedIn('dev@example.com');
  });

  it('orgs: a new user has a personal org; create, list, switch (config.json org_id), status', async () => {
    const first = await owner.json<{ data: Array<Record<string, unknown>> }>(['orgs', 'list']);
    expect(first.data).toHaveLength(1);
    expect(first.data[0]).toMatchObject({ id: expect.stringMatching(ORG_ID), role: 'owner' });
    const personal = first.data[0]!.id as string;

    const created = await owner.json<{ id: string; name: string }>(['orgs', 'create', 'Acme Inc']);
    expect(created).toMatchObject({ id: expect.stringMatching(ORG_ID), name: 'Acme Inc' });
    acme = created;
    const listed = await owner.json<{ data: Array<{ id: string; role: string }> }>(['orgs', 'list']);
    expect(listed.data.map((o) => o.id).sort()).toEqual([personal, acme.id].sort());
    expect(listed.data.find((o) => o.id === acme.id)?.role).toBe('owner');

    // the table marks the current org (the key's) until a switch
    const table = await owner.breeze(['orgs', 'list']);
    expect(table.stdout).toMatch(new RegExp(`^${personal} \\*`, 'm'));

    const sw = await owner.breeze(['orgs', 'switch', 'acme inc']);
    expect(sw.code, sw.stderr).toBe(0);
    expect(config(owner).org_id).toBe(acme.id);
    expect(readFileSync(join(owner.dir, 'config.json'), 'utf8')).not.toContain(owner.apiKey);

    const status = await owner.json<{ org: unknown; project: unknown }>(['status']);
    expect(status.org).toEqual({ id: acme.id, name: 'Acme Inc', role: 'owner' });
    expect(status.project).toMatchObject({ id: expect.stringMatching(PROJ_ID), name: 'default' });
    const human = await owner.breeze(['status']);
    expect(human.stdout).toContain(`Acme Inc (${acme.id}), role owner`);

    expect((await owner.breeze(['orgs', 'switch', 'no such org'])).code).toBe(4);
    expect(config(owner).org_id).toBe(acme.id);

    // rotating the stored key keeps the profile's organization
    const rotated = await owner.breeze(['keys', 'rotate', '--self', '--grace', '0']);
    expect(rotated.code, rotated.stderr).toBe(0);
    owner.apiKey = rotated.stdout.trim();
    expect(config(owner).org_id).toBe(acme.id);
    // BREEZE_API_KEY alone has no profile to remember an organization in
    const envSwitch = await owner.breeze(['orgs', 'switch', personal], { BREEZE_API_KEY: owner.apiKey });
    expect(envSwitch.code).toBe(1);
    expect(envSwitch.stderr).toContain('BREEZE_API_KEY is in use');
    expect(config(owner).org_id).toBe(acme.id);

    // logging in again as the same user keeps it; as another user drops it
    const again = await owner.json<{ api_key: string }>([
      'keys',
      'create',
      '--name',
      'again',
      '--scopes',
      'read,write,admin',
    ]);
    const relogin = await owner.breeze(['login', '--with-key'], {}, `${again.api_key}\n`);
    expect(relogin.code, relogin.stderr).toBe(0);
    owner.apiKey = again.api_key;
    expect(config(owner).org_id).toBe(acme.id);
    const other = tempConfigDir();
    dirs.push(other);
    const someone = await seedKeyInDataDir(dataDir, { email: 'someone@example.com' });
    const cfgOther = { ...owner, dir: other.dir };
    const o1 = await runCli(['--server', url, 'login', '--with-key'], {
      configDir: other.dir,
      env: NO_DBUS,
      input: `${again.api_key}\n`,
    });
    expect(o1.code, o1.stderr).toBe(0);
    expect(
      (await runCli(['--server', url, 'orgs', 'switch', acme.id], { configDir: other.dir, env: NO_DBUS }))
        .code,
    ).toBe(0);
    expect(config(cfgOther).org_id).toBe(acme.id);
    const o2 = await runCli(['--server', url, 'login', '--with-key'], {
      configDir: other.dir,
      env: NO_DBUS,
      input: `${someone.apiKey}\n`,
    });
    expect(o2.code, o2.stderr).toBe(0);
    expect(config(cfgOther).org_id).toBeUndefined();
  });

  it('projects: list, create, a key in it by name, delete refused (409, exit 1) while it has keys', async () => {
    const list = await owner.json<{ data: Array<{ id: string; name: string }> }>(['projects', 'list']);
    expect(list.data.map((p) => p.name)).toEqual(['default']);

    const billing = await owner.json<{ id: string; name: string }>(['projects', 'create', 'billing']);
    expect(billing).toMatchObject({ id: expect.stringMatching(PROJ_ID), name: 'billing' });

    const key = await owner.json<Record<string, unknown>>([
      'keys',
      'create',
      '--name',
      'billing-ci',
      '--project',
      'billing',
      '--scopes',
      'read,write',
    ]);
    expect(key).toMatchObject({ project_id: billing.id, org_id: acme.id, name: 'billing-ci' });
    const inProject = await owner.json<{ data: Array<{ key_id: string }> }>([
      'keys',
      'list',
      '--project',
      'billing',
    ]);
    expect(inProject.data.map((k) => k.key_id)).toEqual([key.key_id]);
    const inDefault = await owner.json<{ data: Array<{ key_id: string }> }>([
      'keys',
      'list',
      '--project',
      'default',
    ]);
    expect(inDefault.data.map((k) => k.key_id)).not.toContain(key.key_id);

    const refused = await owner.breeze(['projects', 'delete', 'billing']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `Project billing (${billing.id}) still has keys, so it was not deleted.`,
    );

    expect((await owner.breeze(['keys', 'delete', String(key.key_id), '--yes'])).code).toBe(0);
    const deleted = await owner.json<{ id: string; deleted: boolean }>(['projects', 'delete', 'billing']);
    expect(deleted).toMatchObject({ id: billing.id, deleted: true });
    expect(
      (await owner.json<{ data: Array<{ name: string }> }>(['projects', 'list'])).data.map((p) => p.name),
    ).toEqual(['default']);
    expect((await owner.breeze(['projects', 'delete', 'billing'])).code).toBe(4);
    expect((await owner.breeze(['keys', 'create', '--name', 'x', '--project', 'billing'])).code).toBe(4);
  });

  it('invite, accept with the mailed code, role changes narrow the key, removal kills it', async () => {
    const inv = await owner.json<{ id: string; email: string; role: string; expires_at: string }>([
      'members',
      'invite',
      dev.email,
      '--role',
      'admin',
    ]);
    expect(inv).toMatchObject({ id: expect.stringMatching(/^inv_/), email: dev.email, role: 'admin' });
    const days = (Date.parse(inv.expires_at) - Date.now()) / 86400_000;
    expect(days).toBeGreaterThan(6.9);
    expect(days).toBeLessThanOrEqual(7.01);
    const mail = invitationMail(dev.email, inv.id);
    expect(mail.subject).toMatch(/^You are invited to/);

    // someone else cannot use it, even with the right code; a wrong code is 404 too
    const eve = await loggedIn('eve@example.com');
    expect((await eve.breeze(['invitations', 'accept', inv.id, '--code', mail.code])).code).toBe(4);
    const wrong = mail.code[0] === 'A' ? `B${mail.code.slice(1)}` : `A${mail.code.slice(1)}`;
    expect((await dev.breeze(['invitations', 'accept', inv.id, '--code', wrong])).code).toBe(4);

    const accepted = await dev.breeze(['invitations', 'accept', inv.id, '--code', mail.code.toLowerCase()]);
    expect(accepted.code, accepted.stderr).toBe(0);
    expect(accepted.stderr).toContain(`Joined Acme Inc (${acme.id}) as admin.`);
    // single use
    expect((await dev.breeze(['invitations', 'accept', inv.id, '--code', mail.code])).code).toBe(4);

    const members = await owner.json<{ data: Array<{ user: { email: string }; role: string }> }>([
      'members',
      'list',
    ]);
    expect(members.data.map((m) => [m.user.email, m.role]).sort()).toEqual([
      [dev.email, 'admin'],
      [owner.email, 'owner'],
    ]);
    const table = await owner.breeze(['members', 'list']);
    expect(table.stdout.trimEnd().split('\n')).toHaveLength(3);

    // the developer works in Acme: as admin, a key in its default project and a project of their own
    expect((await dev.breeze(['orgs', 'switch', acme.id])).code).toBe(0);
    const devKey = await dev.json<{ api_key: string; org_id: string; created_by: string }>([
      'keys',
      'create',
      '--name',
      'dev-acme',
      '--project',
      'default',
      '--scopes',
      'read,write,admin',
    ]);
    expect(devKey.org_id).toBe(acme.id);
    expect((await me(devKey.api_key)).body.auth.scopes).toEqual(['read', 'write', 'admin']);
    expect((await dev.breeze(['projects', 'create', 'dev-tools'])).code).toBe(0);
    expect((await dev.breeze(['projects', 'delete', 'dev-tools'])).code).toBe(0);

    // member: the key narrows to read, write at once; no more key, project or member management
    const demoted = await owner.json<{ user: { email: string }; role: string }>([
      'members',
      'role',
      dev.email.toUpperCase(),
      'member',
    ]);
    expect(demoted).toMatchObject({ user: { email: dev.email }, role: 'member' });
    expect((await me(devKey.api_key)).body.auth.scopes).toEqual(['read', 'write']);
    expect((await dev.breeze(['projects', 'create', 'mine'])).code).toBe(4);
    expect((await dev.breeze(['members', 'invite', 'x@example.com', '--role', 'viewer'])).code).toBe(4);
    expect((await dev.breeze(['keys', 'create', '--name', 'more', '--project', 'default'])).code).toBe(4);
    const status = await dev.json<{ org: unknown }>(['status']);
    expect(status.org).toEqual({ id: acme.id, name: 'Acme Inc', role: 'member' });

    expect((await owner.json<{ role: string }>(['members', 'role', dev.email, 'viewer'])).role).toBe(
      'viewer',
    );
    expect((await me(devKey.api_key)).body.auth.scopes).toEqual(['read']);

    const last = await owner.breeze(['members', 'role', owner.email, 'admin']);
    expect(last.code).toBe(1);
    expect(last.stderr).toContain('an organization keeps at least one owner');

    const removed = await owner.json<{ removed: boolean; user: { email: string } }>([
      'members',
      'remove',
      dev.email,
    ]);
    expect(removed).toMatchObject({ removed: true, user: { email: dev.email } });
    const started = Date.now();
    let refused = 0;
    while (Date.now() - started < 1000) {
      refused = (await me(devKey.api_key)).status;
      if (refused === 401) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(refused).toBe(401);
    // Acme is gone for the developer: 404 -> exit 4; their own key still works elsewhere
    const gone = await dev.breeze(['projects', 'list']);
    expect(gone.code).toBe(4);
    expect(gone.stderr).toContain(
      `Organization ${acme.id}, the current one of profile "default", was not found`,
    );
    expect((await dev.breeze(['orgs', 'list'])).code).toBe(0);
  });

  it('members remove with your own email leaves the organization', async () => {
    const leaver = await loggedIn('leaver@example.com');
    const inv = await owner.json<{ id: string }>(['members', 'invite', leaver.email, '--role', 'member']);
    const mail = invitationMail(leaver.email, inv.id);
    const accepted = await leaver.breeze(['invitations', 'accept', inv.id, '--code', mail.code]);
    expect(accepted.code, accepted.stderr).toBe(0);
    expect((await leaver.breeze(['orgs', 'switch', acme.id])).code).toBe(0);
    const left = await leaver.json<{ removed: boolean; left: boolean; user: { email: string } }>([
      'members',
      'remove',
      leaver.email,
    ]);
    expect(left).toMatchObject({ removed: true, left: true, user: { email: leaver.email } });
    const members = await owner.json<{ data: Array<{ user: { email: string } }> }>(['members', 'list']);
    expect(members.data.map((m) => m.user.email)).not.toContain(leaver.email);
    // Acme is no longer theirs, and the profile falls back to the key's own organization
    const orgs = await leaver.json<{ data: Array<{ id: string }> }>(['orgs', 'list']);
    expect(orgs.data.map((o) => o.id)).not.toContain(acme.id);
    expect((await leaver.breeze(['orgs', 'switch', acme.id])).code).toBe(4);
  });

  it('usage errors exit 2, no credential exits 3', async () => {
    expect((await owner.breeze(['members', 'invite', 'dev@example.com', '--role', 'boss'])).code).toBe(2);
    expect((await owner.breeze(['members', 'invite', 'not-an-email', '--role', 'member'])).code).toBe(2);
    expect((await owner.breeze(['members', 'invite', 'dev@example.com'])).code).toBe(2);
    expect((await owner.breeze(['members', 'role', owner.email, 'superuser'])).code).toBe(2);
    expect((await owner.breeze(['invitations', 'accept', 'inv_x'])).code).toBe(2);
    expect((await owner.breeze(['projects', 'create', ''])).code).toBe(2);
    const t = tempConfigDir();
    dirs.push(t);
    const none = await runCli(['--server', url, 'orgs', 'list'], { configDir: t.dir, env: NO_DBUS });
    expect(none.code).toBe(3);
  });
});
