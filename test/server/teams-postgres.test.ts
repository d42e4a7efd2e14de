import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { MeResponse } from '../../src/core/types.js';
import { postgresAvailability, startPostgres, type TestPostgres, uniqueDbName } from '../helpers/postgres.js';
import { requirePart } from '../helpers/require.js';

/**
 * Issue 12, black box, over real server processes on one PostgreSQL database: an owner invites a
 * member, the member accepts, the member's key is capped at read,write, the owner removes the
 * member on instance A, and instance C — whose verification cache keeps keys for 60 s — refuses
 * the member's key within one second (it can only have learnt it by NOTIFY).
 */

const avail = postgresAvailability();
const built = existsSync('dist/server/serve.js');
const skip =
  requirePart('PostgreSQL', avail.available, avail.why) ||
  requirePart('built dist/', built, 'dist/ is missing: run "npx tsc -p tsconfig.build.json"');

const PEPPER = `teams-${randomBytes(8).toString('hex')}`;
const PUBLIC_URL = 'http://breeze.test';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Instance {
  url: string;
  dataDir: string;
  proc: ChildProcess;
}

async function startInstance(
  name: string,
  databaseUrl: string,
  root: string,
  cacheTtlMs: number,
): Promise<Instance> {
  const dataDir = join(root, name);
  const proc = spawn(
    process.execPath,
    ['test/fixtures/serve-instance.mjs', dataDir, databaseUrl, String(cacheTtlMs), PUBLIC_URL],
    { env: { ...process.env, BREEZE_PEPPER: PEPPER, FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout?.on('data', (d) => {
    out += d;
  });
  proc.stderr?.on('data', (d) => {
    out += d;
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    const url = /"url":"(http:\/\/[^"]+)"/.exec(out)?.[1];
    if (url) return { url, dataDir, proc };
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`instance ${name} did not start:\n${out}`);
    }
    await sleep(50);
  }
}

async function stopInstance(i: Instance): Promise<void> {
  if (i.proc.exitCode !== null || i.proc.signalCode !== null) return;
  const exited = new Promise((r) => i.proc.once('exit', r));
  i.proc.kill('SIGTERM');
  await Promise.race([exited, sleep(10_000)]);
  if (i.proc.exitCode === null) i.proc.kill('SIGKILL');
}

type Cred = { key?: string; jwt?: string };

async function api(i: Instance, method: string, path: string, cred: Cred, body?: unknown) {
  const res = await fetch(`${i.url}${path}`, {
    method,
    headers: {
      ...(cred.key ? { 'xi-api-key': cred.key } : {}),
      ...(cred.jwt ? { authorization: `Bearer ${cred.jwt}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}

/** Waits for a mail to `to` in the instance's dev outbox whose text matches `re`; returns group 1. */
async function fromOutbox(i: Instance, to: string, re: RegExp, seen: Set<string>): Promise<string> {
  const dir = join(i.dataDir, 'outbox');
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (existsSync(dir)) {
      for (const f of readdirSync(dir)
        .filter((f) => f.endsWith('.eml'))
        .sort()) {
        if (seen.has(f)) continue;
        const eml = readFileSync(join(dir, f), 'utf8');
        const m = re.exec(eml);
        if (eml.includes(`To: ${to}`) && m?.[1]) {
          seen.add(f);
          return m[1];
        }
      }
    }
    if (Date.now() > deadline) throw new Error(`no mail to ${to} matching ${re}`);
    await sleep(50);
  }
}

describe.skipIf(skip)('teams on PostgreSQL, two server processes', () => {
  let pgs: TestPostgres;
  let root: string;
  let A: Instance;
  let C: Instance;
  const started: Instance[] = [];
  const seen = new Set<string>();

  beforeAll(async () => {
    pgs = await startPostgres();
    const url = await pgs.createDatabase(uniqueDbName('teams'));
    root = mkdtempSync('/tmp/breeze-teams-');
    A = await startInstance('a', url, root, 500);
    started.push(A);
    C = await startInstance('c', url, root, 60_000);
    started.push(C);
  }, 90_000);

  afterAll(async () => {
    await Promise.all(started.map(stopInstance));
    await pgs?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  /** The email-code flow on A: an API key (personal org, every scope) or a JWT. */
  async function signIn(email: string, type: 'api_key' | 'jwt'): Promise<Record<string, unknown>> {
    const start = await api(A, 'POST', '/auth/code', {}, { email, type });
    expect(start.status).toBe(201);
    const code = await fromOutbox(A, email, /^Subject: Your Breeze code: ([0-9A-Z]{8})\r?$/m, seen);
    const res = await api(A, 'POST', `/auth/code/${start.body.id}/verifications`, {}, { code });
    expect(res.status).toBe(200);
    return res.body;
  }

  test('invite, accept, capped key, removal refused within 1 s on the other instance', async () => {
    const ownerKey = { key: (await signIn('owner@acme.test', 'api_key')).secret as string };
    const org = await api(A, 'POST', '/v1/orgs', ownerKey, { name: 'Acme' });
    expect(org.status).toBe(201);
    const orgId = org.body.id as string;

    const inv = await api(A, 'POST', `/v1/orgs/${orgId}/invitations`, ownerKey, {
      email: 'dev@acme.test',
      role: 'member',
    });
    expect(inv.status).toBe(201);
    const inviteCode = await fromOutbox(A, 'dev@acme.test', /invitation code is ([0-9A-Z]{8})/, seen);

    const memberKey = { key: (await signIn('dev@acme.test', 'api_key')).secret as string };
    const memberJwt = { jwt: (await signIn('dev@acme.test', 'jwt')).token as string };
    // accepted on the other instance: the invitation lives in the shared database
    const accepted = await api(C, 'POST', `/v1/invitations/${inv.body.id}/accept`, memberKey, {
      code: inviteCode,
    });
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ user: { email: 'dev@acme.test' }, role: 'member' });

    // in Acme the member's every-scope personal key is capped at read,write
    const meInAcme = await api(C, 'GET', `/v1/me?org_id=${orgId}`, memberKey);
    expect(meInAcme.body).toMatchObject({
      org: { id: orgId, role: 'member' },
      auth: { scopes: ['read', 'write'] },
    });
    expect((await api(C, 'POST', `/v1/orgs/${orgId}/projects`, memberKey, { name: 'x' })).status).toBe(403);
    // a member cannot mint an admin key in Acme; a read,write one it can
    const projects = await api(A, 'GET', `/v1/orgs/${orgId}/projects`, memberJwt);
    const projectId = (projects.body.data as { id: string }[])[0]?.id;
    expect(
      (
        await api(A, 'POST', '/v1/api-keys', memberJwt, {
          name: 'dev',
          project_id: projectId,
          scopes: ['read', 'write', 'admin'],
        })
      ).status,
    ).toBe(403);
    const created = await api(A, 'POST', '/v1/api-keys', memberJwt, {
      name: 'dev',
      project_id: projectId,
      scopes: ['read', 'write'],
    });
    expect(created.status).toBe(201);
    const acmeKey = { key: created.body.api_key as string };

    // C verifies it and keeps it in its 60 s cache
    const me = await api(C, 'GET', '/v1/me', acmeKey);
    expect(me.status).toBe(200);
    expect(me.body as unknown as MeResponse).toMatchObject({
      auth: { scopes: ['read', 'write'] },
      org: { id: orgId, name: 'Acme', role: 'member' },
      project: { id: projectId, name: 'default' },
    });
    expect((await api(C, 'GET', '/v1/me', acmeKey)).status).toBe(200);

    const memberId = (accepted.body.user as { id: string }).id;
    const t0 = performance.now();
    expect((await api(A, 'DELETE', `/v1/orgs/${orgId}/members/${memberId}`, ownerKey)).status).toBe(204);
    let elapsed = 0;
    let status = 200;
    while (status === 200 && elapsed < 3_000) {
      status = (await api(C, 'GET', '/v1/me', acmeKey)).status;
      elapsed = performance.now() - t0;
      if (status === 200) await sleep(25);
    }
    console.info(
      `[teams-postgres] removed member's key refused on the other instance after ${Math.round(elapsed)} ms`,
    );
    expect(status).toBe(401);
    expect(elapsed).toBeLessThan(1_000);
    // the member's personal key still works: only keys in Acme are gone
    expect((await api(C, 'GET', '/v1/me', memberKey)).status).toBe(200);
    expect((await api(C, 'GET', `/v1/orgs/${orgId}/members`, memberKey)).status).toBe(404);
  });
});
