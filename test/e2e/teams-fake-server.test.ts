/**
 * The team commands (issue 12) against a FAKE server on 127.0.0.1 that answers what a broken or
 * malicious server could: names with terminal escapes, unknown roles, ids that are shell text,
 * emails with newlines. The built CLI must check every answer, escape what it prints, never store
 * a malformed org id, and send what PLATFORM.md asks for (paths, `project_id`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../src/core/api-key.js';
import { runCli, tempConfigDir } from '../helpers/cli.js';
import {
  apiError,
  expectTerminalSafe,
  type FakeServer,
  type Handler,
  type Reply,
  type Seen,
  startFakeServer,
} from '../helpers/fake-server.js';

let fake: FakeServer;
let url = '';
let seen: Seen[] = [];
let routes: Record<string, Handler> = {};

const KEY = generateApiKey();
const USER = { id: 'usr_01JFAKEUSER0000000000000', email: 'me@example.com' };
const ORG_P = {
  id: 'org_01JPERSONAL0000000000000',
  name: 'Personal',
  role: 'owner',
  created_at: '2026-01-01T00:00:00Z',
};
const ORG_A = {
  id: 'org_01JACME000000000000000000',
  name: 'Acme',
  role: 'admin',
  created_at: '2026-01-02T00:00:00Z',
};
const PROJ_DEFAULT = {
  id: 'proj_01JDEFAULT00000000000000',
  name: 'default',
  created_at: '2026-01-02T00:00:00Z',
};
const PROJ_BILLING = {
  id: 'proj_01JBILLING00000000000000',
  name: 'billing',
  created_at: '2026-01-03T00:00:00Z',
};
const EVIL = 'x\x1b]0;pwned\x07\n✓ forged\u202Etxt';

function keyObject(overrides: Record<string, unknown> = {}) {
  return {
    key_id: 'key_01JFAKEKEY00000000000000',
    name: 'k',
    prefix: KEY.slice(0, 12),
    scopes: ['read', 'write', 'admin'],
    status: 'active',
    created_at: '2026-01-01T00:00:00.000Z',
    expires_at: null,
    last_used_at: null,
    disabled_at: null,
    rotated_from: null,
    created_via: 'api',
    ...overrides,
  };
}

/** A sane team server: one user, member of Personal (owner) and Acme (admin). */
function saneRoutes(): Record<string, (s: Seen) => Reply> {
  return {
    'GET /v1/me': () => ({
      status: 200,
      body: {
        user: USER,
        auth: { type: 'api_key', key_id: keyObject().key_id, scopes: ['read', 'write', 'admin'] },
        org: { id: ORG_P.id, name: ORG_P.name, role: 'owner' },
        project: { id: 'proj_01JPERSONALDEFAULT000000', name: 'default' },
      },
    }),
    'GET /v1/api-keys/key_01JFAKEKEY00000000000000': () => ({ status: 200, body: keyObject() }),
    'GET /v1/orgs': () => ({ status: 200, body: { data: [ORG_P, ORG_A] } }),
    [`GET /v1/orgs/${ORG_A.id}/projects`]: () => ({
      status: 200,
      body: { data: [PROJ_DEFAULT, PROJ_BILLING] },
    }),
    [`GET /v1/orgs/${ORG_P.id}/projects`]: () => ({
      status: 200,
      body: { data: [{ id: 'proj_01JPERSONALDEFAULT000000', name: 'default' }] },
    }),
    'POST /v1/api-keys': (s) => ({
      status: 201,
      body: { ...keyObject({ key_id: 'key_01JNEWKEY000000000000000', name: s.body?.name }), api_key: KEY },
    }),
    'GET /v1/api-keys': () => ({ status: 200, body: { data: [keyObject()], next_cursor: null } }),
    [`GET /v1/orgs/${ORG_A.id}/members`]: () => ({
      status: 200,
      body: {
        data: [
          { user: USER, role: 'admin', joined_at: '2026-01-02T00:00:00Z' },
          {
            user: { id: 'usr_01JOWNER00000000000000000', email: 'Boss@Example.com' },
            role: 'owner',
            joined_at: null,
          },
        ],
      },
    }),
  };
}

let cfg: ReturnType<typeof tempConfigDir>;
const ENV = { BREEZE_STORAGE: 'file', DBUS_SESSION_BUS_ADDRESS: undefined };

function breeze(args: string[], env: Record<string, string | undefined> = {}) {
  return runCli(['--server', url, ...args], {
    configDir: cfg.dir,
    env: { ...ENV, ...env },
    timeoutMs: 20_000,
  });
}

function profile(): Record<string, unknown> {
  return JSON.parse(readFileSync(join(cfg.dir, 'config.json'), 'utf8')).profiles.default;
}

beforeAll(async () => {
  fake = await startFakeServer({ routes: () => routes, seen: (s) => seen.push(s) });
  url = fake.url;
});
afterAll(() => fake.close());
beforeEach(async () => {
  cfg = tempConfigDir();
  routes = saneRoutes();
  const login = await runCli(['--server', url, 'login', '--with-key'], {
    configDir: cfg.dir,
    env: ENV,
    input: `${KEY}\n`,
  });
  expect(login.code, login.stderr).toBe(0);
  seen = [];
});
afterEach(() => {
  cfg.cleanup();
});

describe('team commands against a fake server', { timeout: 90_000 }, () => {
  it('orgs list: --json is the API body; the table escapes names, one row per org', async () => {
    const evil = { ...ORG_A, name: EVIL };
    routes['GET /v1/orgs'] = () => ({ status: 200, body: { data: [ORG_P, evil] } });
    const json = await breeze(['orgs', 'list', '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ data: [ORG_P, evil] });
    expectTerminalSafe(json);
    const table = await breeze(['orgs', 'list']);
    expect(table.code, table.stderr).toBe(0);
    expectTerminalSafe(table);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(new RegExp(`^${ORG_P.id} \\*\\s+Personal\\s+owner`));
    expect(lines[2]).toContain('\\x1B]0;pwned\\x07\\n✓ forged\\u{202E}txt');
    expect(`${table.stdout}${table.stderr}`.split('\n').filter((l) => l.startsWith('✓'))).toEqual([]);
  });

  it('an unknown role or a malformed id in an answer is refused (exit 1), nothing printed on stdout', async () => {
    routes['GET /v1/orgs'] = () => ({ status: 200, body: { data: [{ ...ORG_A, role: 'superuser' }] } });
    const r = await breeze(['orgs', 'list', '--json']);
    expect(r.code).toBe(1);
    // with --json, stdout holds only the error document (CLI.md), never the refused answer
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'UNEXPECTED_RESPONSE' } });
    expect(r.stdout).not.toContain('superuser');
    expect(r.stderr).toMatch(/data\[0\]\.role is not a role.*UNEXPECTED_RESPONSE/);
    routes['GET /v1/orgs'] = () => ({ status: 200, body: { data: [{ ...ORG_A, id: "org_1'; rm -rf ~" }] } });
    const s = await breeze(['orgs', 'switch', 'Acme']);
    expect(s.code).toBe(1);
    expect(s.stderr).toMatch(/data\[0\]\.id is not a well-formed id/);
    expect(profile().org_id).toBeUndefined();
  });

  it('orgs switch by name stores org_id (never a secret); projects list then asks that org', async () => {
    const r = await breeze(['orgs', 'switch', 'acme']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`Now using organization Acme (${ORG_A.id}), role admin.`);
    expect(profile().org_id).toBe(ORG_A.id);
    expect(readFileSync(join(cfg.dir, 'config.json'), 'utf8')).not.toContain(KEY);
    seen = [];
    const p = await breeze(['projects', 'list', '--json']);
    expect(p.code, p.stderr).toBe(0);
    expect(JSON.parse(p.stdout)).toEqual({ data: [PROJ_DEFAULT, PROJ_BILLING] });
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual([`GET /v1/orgs/${ORG_A.id}/projects`]);
  });

  it('without a switch, projects act on the org of the key (GET /v1/me)', async () => {
    const p = await breeze(['projects', 'list']);
    expect(p.code, p.stderr).toBe(0);
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual([
      'GET /v1/me',
      `GET /v1/orgs/${ORG_P.id}/projects`,
    ]);
  });

  it('keys create --project <name> sends the resolved project_id; keys list --project sends ?project_id=', async () => {
    expect((await breeze(['orgs', 'switch', ORG_A.id])).code).toBe(0);
    seen = [];
    const c = await breeze(['keys', 'create', '--name', 'ci', '--project', 'billing', '--json']);
    expect(c.code, c.stderr).toBe(0);
    expect(seen.find((s) => s.method === 'POST')?.body).toMatchObject({
      name: 'ci',
      project_id: PROJ_BILLING.id,
    });
    seen = [];
    const byId = await breeze(['keys', 'create', '--name', 'ci2', '--project', PROJ_DEFAULT.id]);
    expect(byId.code, byId.stderr).toBe(0);
    // an id needs no lookup
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual(['POST /v1/api-keys']);
    expect(seen[0]?.body?.project_id).toBe(PROJ_DEFAULT.id);
    seen = [];
    const l = await breeze(['keys', 'list', '--project', 'billing', '--json']);
    expect(l.code, l.stderr).toBe(0);
    expect(seen.find((s) => s.path === '/v1/api-keys')?.query.get('project_id')).toBe(PROJ_BILLING.id);
  });

  it('BREEZE_PROJECT picks the project of keys create and keys list; a --project flag wins over it', async () => {
    expect((await breeze(['orgs', 'switch', ORG_A.id])).code).toBe(0);
    const env = { BREEZE_PROJECT: 'billing' };
    seen = [];
    const c = await breeze(['keys', 'create', '--name', 'ci', '--json'], env);
    expect(c.code, c.stderr).toBe(0);
    expect(seen.find((s) => s.method === 'POST')?.body?.project_id).toBe(PROJ_BILLING.id);
    seen = [];
    const l = await breeze(['keys', 'list', '--json'], env);
    expect(l.code, l.stderr).toBe(0);
    expect(seen.find((s) => s.path === '/v1/api-keys')?.query.get('project_id')).toBe(PROJ_BILLING.id);
    seen = [];
    const flag = await breeze(['keys', 'create', '--name', 'ci', '--project', PROJ_DEFAULT.id], env);
    expect(flag.code, flag.stderr).toBe(0);
    expect(seen.find((s) => s.method === 'POST')?.body?.project_id).toBe(PROJ_DEFAULT.id);
  });

  it('a key object whose org_id or project_id is not an id is refused: the plaintext is not printed', async () => {
    routes['POST /v1/api-keys'] = () => ({
      status: 201,
      body: { ...keyObject({ project_id: 'proj_1\n✓ Saved', org_id: ORG_A.id }), api_key: KEY },
    });
    const r = await breeze(['keys', 'create', '--name', 'ci', '--project', PROJ_BILLING.id]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/response\.project_id is not a well-formed id/);
    expect(r.stderr).not.toContain(KEY);
    expectTerminalSafe(r);
  });

  it('an unknown project name is exit 4; an ambiguous one is exit 2 naming the ids', async () => {
    expect((await breeze(['orgs', 'switch', 'Acme'])).code).toBe(0);
    const none = await breeze(['keys', 'create', '--name', 'ci', '--project', 'nope']);
    expect(none.code).toBe(4);
    expect(none.stderr).toContain('No project "nope"');
    expect(seen.some((s) => s.method === 'POST')).toBe(false);
    routes[`GET /v1/orgs/${ORG_A.id}/projects`] = () => ({
      status: 200,
      body: { data: [PROJ_BILLING, { ...PROJ_DEFAULT, name: 'billing' }] },
    });
    const two = await breeze(['projects', 'delete', 'billing']);
    expect(two.code).toBe(2);
    expect(two.stderr).toContain(PROJ_BILLING.id);
    expect(two.stderr).toContain(PROJ_DEFAULT.id);
  });

  it('409s say what happened and exit 1: a project with keys, the last owner', async () => {
    expect((await breeze(['orgs', 'switch', 'Acme'])).code).toBe(0);
    routes[`DELETE /v1/projects/${PROJ_BILLING.id}`] = () => ({
      status: 409,
      body: apiError('CONFLICT', 'The project has keys.', 409),
    });
    const d = await breeze(['projects', 'delete', 'billing']);
    expect(d.code).toBe(1);
    expect(d.stderr).toContain(`Project billing (${PROJ_BILLING.id}) still has keys, so it was not deleted.`);
    expect(d.stderr).toContain('breeze keys list --all --project');
    routes[`PATCH /v1/orgs/${ORG_A.id}/members/usr_01JOWNER00000000000000000`] = () => ({
      status: 409,
      body: apiError('CONFLICT', 'The last owner cannot be demoted.', 409),
    });
    const r = await breeze(['members', 'role', 'boss@example.com', 'viewer']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'Cannot make Boss@Example.com viewer: an organization keeps at least one owner.',
    );
    expect(r.stderr).toContain('Make another member owner first');
  });

  it('members: a member email with a newline is refused, not printed', async () => {
    expect((await breeze(['orgs', 'switch', 'Acme'])).code).toBe(0);
    routes[`GET /v1/orgs/${ORG_A.id}/members`] = () => ({
      status: 200,
      body: {
        data: [{ user: { id: USER.id, email: 'a@b.c\n✓ You are owner' }, role: 'admin', joined_at: null }],
      },
    });
    const r = await breeze(['members', 'list']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/user\.email is not an email address/);
    expectTerminalSafe(r);
  });

  it('status shows the current org with the role there and the key’s project', async () => {
    const before = await breeze(['status', '--json']);
    expect(before.code, before.stderr).toBe(0);
    const s0 = JSON.parse(before.stdout);
    expect(s0.org).toEqual({ id: ORG_P.id, name: 'Personal', role: 'owner' });
    expect(s0.project).toEqual({ id: 'proj_01JPERSONALDEFAULT000000', name: 'default' });
    expect((await breeze(['orgs', 'switch', 'Acme'])).code).toBe(0);
    const after = await breeze(['status']);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).toContain(`Org:      Acme (${ORG_A.id}), role admin`);
    expect(after.stdout).toContain(
      "Project:  default (proj_01JPERSONALDEFAULT000000), in the key's organization Personal",
    );
  });

  it('a megabyte-long org name is shown cut in status, tables and messages; --json has it whole', async () => {
    const huge = `Acme${'N'.repeat(1 << 20)}`;
    routes['GET /v1/me'] = () => ({
      status: 200,
      body: {
        user: USER,
        auth: { type: 'api_key', key_id: keyObject().key_id, scopes: ['read', 'write', 'admin'] },
        org: { id: ORG_P.id, name: huge, role: 'owner' },
        project: { id: 'proj_01JPERSONALDEFAULT000000', name: huge },
      },
    });
    routes['GET /v1/orgs'] = () => ({ status: 200, body: { data: [{ ...ORG_P, name: huge }, ORG_A] } });
    routes['POST /v1/orgs'] = () => ({ status: 201, body: { ...ORG_A, name: huge } });
    for (const args of [['status'], ['orgs', 'list'], ['orgs', 'create', 'x']]) {
      const r = await breeze(args);
      expect(r.code, r.stderr.slice(0, 300)).toBe(0);
      expect(r.stdout.length + r.stderr.length, args.join(' ')).toBeLessThan(8000);
      expect(`${r.stdout}${r.stderr}`).toContain('AcmeNNN');
    }
    const json = await breeze(['--json', 'orgs', 'list']);
    expect(JSON.parse(json.stdout).data[0].name).toBe(huge);
    // --verbose still shows the whole answer, in lines of bounded length
    const traced = await breeze(['--verbose', 'orgs', 'list']);
    expect(traced.code).toBe(0);
    const lines = traced.stderr.split('\n');
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(4096);
    expect(lines.join('').match(/N/g)?.length).toBeGreaterThanOrEqual(3 << 20);
  });

  it('webhooks: a delivery without last_status_code shows "-" / no code, never "undefined" or "null"', async () => {
    const delivery = (o: Record<string, unknown>) => ({
      id: 'dlv_01JFAKE',
      event: 'ping',
      attempts: 1,
      next_attempt_at: null,
      ...o,
    });
    routes['GET /v1/webhooks/whk_01JFAKE/deliveries'] = () => ({
      status: 200,
      body: { data: [delivery({ status: 'failed', last_error: 'refused' })] },
    });
    const list = await breeze(['webhooks', 'deliveries', 'whk_01JFAKE']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).not.toMatch(/undefined|null/);
    expect(list.stdout).toMatch(/dlv_01JFAKE\s+ping\s+failed\s+1\s+-\s/);
    for (const code of [null, undefined]) {
      routes['POST /v1/webhooks/whk_01JFAKE/test'] = () => ({
        status: 200,
        body: delivery({ status: 'delivered', last_status_code: code }),
      });
      const r = await breeze(['webhooks', 'test', 'whk_01JFAKE']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('✓ Ping delivered.');
      expect(r.stderr).not.toMatch(/undefined|null/);
    }
  });

  it('invitations accept normalises the typed code, sends it in the body, names the org joined', async () => {
    let joined = false;
    routes['GET /v1/orgs'] = () => ({ status: 200, body: { data: joined ? [ORG_P, ORG_A] : [ORG_P] } });
    routes['POST /v1/invitations/inv_01JINV0000000000000000000/accept'] = (s) => {
      if (s.body?.code !== 'ABCD1234')
        return { status: 404, body: apiError('NOT_FOUND', 'No such invitation.', 404) };
      joined = true;
      return { status: 200, body: { user: USER, role: 'member', joined_at: '2026-01-05T00:00:00Z' } };
    };
    const bad = await breeze([
      'invitations',
      'accept',
      'inv_01JINV0000000000000000000',
      '--code',
      'ZZZZ0000',
    ]);
    expect(bad.code).toBe(4);
    const ok = await breeze([
      'invitations',
      'accept',
      'inv_01JINV0000000000000000000',
      '--code',
      'abcd-1234',
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toContain(`Joined Acme (${ORG_A.id}) as member.`);
    expect(ok.stderr).toContain(`breeze orgs switch ${ORG_A.id}`);
    joined = false;
    const json = await breeze([
      'invitations',
      'accept',
      'inv_01JINV0000000000000000000',
      '--code',
      'ABCD1234',
      '--json',
    ]);
    expect(JSON.parse(json.stdout)).toEqual({
      user: USER,
      role: 'member',
      joined_at: '2026-01-05T00:00:00Z',
    });
  });
});
