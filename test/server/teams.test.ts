import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ROLES, type Role } from '../../src/core/types.js';
import { type OrgAction, PERMISSIONS, ROLE_CAPS } from '../../src/server/authz.js';
import type { JwtService } from '../../src/server/jwt.js';
import type { MailMessage } from '../../src/server/mail/mailer.js';
import { ACCEPTS_PER_IP, INVITATIONS_PER_ORG } from '../../src/server/routes/invitations.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Issue 12 over HTTP: the permission matrix of authz.ts, one case per cell (credential × role ×
 * action × same/other organization), generated from PERMISSIONS and ROLE_CAPS rather than listed by
 * hand; then the rules around it (last owner, admin vs owner, keys narrowed and refused at once,
 * invitations).
 */

let s: TestServer;
const mails: MailMessage[] = [];
let jwt: JwtService;
const uniq = () => randomBytes(4).toString('hex');

beforeAll(async () => {
  s = await startTestServer({
    mailer: {
      async send(m) {
        mails.push(m);
      },
    },
    // the matrix makes many requests with one key per role; the per-key limit is not under test here
    config: { rateLimitPerKey: 0 },
  });
  jwt = (s.app as unknown as { jwtService: JwtService }).jwtService;
});
afterAll(async () => {
  await s?.close();
});

type Cred = { kind: 'jwt' | 'api_key'; header: Record<string, string> };

async function credentials(email: string): Promise<{ userId: string; jwt: Cred; key: Cred }> {
  // a key of the user's personal org with every scope: in another org it is capped by the role there
  const seeded = await s.seedKey({ email, scopes: ['read', 'write', 'admin'] });
  const token = (await jwt.issue(seeded.userId)).token;
  return {
    userId: seeded.userId,
    jwt: { kind: 'jwt', header: { authorization: `Bearer ${token}` } },
    key: { kind: 'api_key', header: { 'xi-api-key': seeded.apiKey } },
  };
}

async function call(cred: Cred | Record<string, string>, method: string, url: string, payload?: object) {
  const headers = 'kind' in cred ? (cred as Cred).header : (cred as Record<string, string>);
  const res = await s.app.inject({
    method: method as 'GET',
    url,
    headers: headers as Record<string, string>,
    ...(payload ? { payload } : {}),
  });
  return { status: res.statusCode, body: res.body ? (res.json() as Record<string, unknown>) : {} };
}

/** A fresh organization: owner O, the caller with `role` (unless it stays outside), a member T with a key, an empty project. */
async function scene(caller: { userId: string } | null, role: Role | null) {
  const owner = await s.store.users.ensure(`o-${uniq()}@example.com`);
  const target = await s.store.users.ensure(`t-${uniq()}@example.com`);
  const { org, project } = await s.store.transaction((tx) => tx.orgs.create(`Org ${uniq()}`, owner.id));
  if (caller && role) await s.store.orgs.addMember(org.id, caller.userId, role);
  await s.store.orgs.addMember(org.id, target.id, 'member');
  const empty = await s.store.orgs.createProject(org.id, `p-${uniq()}`);
  const targetKey = await s.app.breeze.keys.mint({
    userId: target.id,
    projectId: project.id,
    name: 'target key',
    scopes: ['read', 'write'],
    expiresAt: null,
    createdVia: 'api',
  });
  return { org, project, empty: empty?.id ?? '', target, targetKey: targetKey.row.id };
}

type Scene = Awaited<ReturnType<typeof scene>>;

/** One request per action of the matrix (what a client would send to do it). */
const REQUESTS: Record<OrgAction, (sc: Scene, me: string) => [string, string, object?]> = {
  'org.read': (sc) => ['GET', `/v1/orgs/${sc.org.id}/projects`],
  'members.list': (sc) => ['GET', `/v1/orgs/${sc.org.id}/members`],
  'members.invite': (sc) => [
    'POST',
    `/v1/orgs/${sc.org.id}/invitations`,
    { email: `i-${uniq()}@example.com`, role: 'viewer' },
  ],
  'members.update': (sc) => ['PATCH', `/v1/orgs/${sc.org.id}/members/${sc.target.id}`, { role: 'viewer' }],
  'members.remove': (sc) => ['DELETE', `/v1/orgs/${sc.org.id}/members/${sc.target.id}`],
  'members.leave': (sc, me) => ['DELETE', `/v1/orgs/${sc.org.id}/members/${me}`],
  'projects.create': (sc) => ['POST', `/v1/orgs/${sc.org.id}/projects`, { name: `new-${uniq()}` }],
  'projects.delete': (sc) => ['DELETE', `/v1/projects/${sc.empty}`],
  'keys.create': (sc) => [
    'POST',
    '/v1/api-keys',
    { name: 'mine', project_id: sc.project.id, scopes: ['read'] },
  ],
  'keys.manage_others': (sc) => ['POST', `/v1/api-keys/${sc.targetKey}/disable`],
  'audit.read': (sc) => ['GET', `/v1/audit-events?org_id=${sc.org.id}`],
  'webhooks.read': (sc) => ['GET', `/v1/orgs/${sc.org.id}/webhooks`],
  // a public IP literal: no DNS needed, and nothing subscribes it to an event these tests make
  'webhooks.manage': (sc) => [
    'POST',
    `/v1/orgs/${sc.org.id}/webhooks`,
    { url: 'https://93.184.216.34/breeze', events: ['oidc.exchanged'] },
  ],
  'oidc_trusts.manage': (sc) => [
    'POST',
    `/v1/orgs/${sc.org.id}/oidc-trusts`,
    { issuer: 'https://token.actions.githubusercontent.com', claims: { repository: 'acme/api' } },
  ],
  'org.update': (sc) => ['PATCH', `/v1/orgs/${sc.org.id}`, { leak_policy: 'notify' }],
};

const SUCCESS: Record<string, number> = { GET: 200, POST: 201, PATCH: 200, DELETE: 204 };
const success = (action: OrgAction, method: string) =>
  action === 'keys.manage_others' ? 200 : (SUCCESS[method] ?? 200);

describe('the permission matrix, every cell', () => {
  const users: Partial<Record<Role | 'outsider', Awaited<ReturnType<typeof credentials>>>> = {};
  beforeAll(async () => {
    for (const r of [...ROLES, 'outsider'] as const)
      users[r] = await credentials(`${r}-${uniq()}@example.com`);
  });

  const cases = (Object.keys(PERMISSIONS) as OrgAction[]).flatMap((action) =>
    ROLES.flatMap((role) =>
      (['jwt', 'api_key'] as const).flatMap((kind) =>
        (['same', 'other'] as const).map((where) => ({ action, role, kind, where })),
      ),
    ),
  );

  test.each(cases)('$kind of a $role, $action, $where org', async ({ action, role, kind, where }) => {
    const me = users[role];
    if (!me) throw new Error('setup');
    // "other org": the caller holds `role` in an organization of its own, and acts on one it is no member of
    const sc = await scene(where === 'same' ? me : null, where === 'same' ? role : null);
    if (where === 'other') await scene(me, role);
    const [method, url, payload] = REQUESTS[action](sc, me.userId);
    const res = await call(kind === 'jwt' ? me.jwt : me.key, method, url, payload);
    const p = PERMISSIONS[action];
    const roleAllows = p.roles.includes(role);
    // a key also needs the action's scope among its own scopes ∩ the role's cap (its own scopes,
    // read, write and admin here, where the action is not capped by the role: leaving)
    const scopeAllows = kind === 'jwt' || p.capped === false || ROLE_CAPS[role].includes(p.scope);
    const expected =
      where === 'other' ? 404 : !roleAllows ? p.denied : !scopeAllows ? 403 : success(action, method);
    expect(res.status, JSON.stringify(res.body)).toBe(expected);
    if (expected >= 400)
      expect((res.body.error as { code: string }).code).toBe(expected === 404 ? 'NOT_FOUND' : 'FORBIDDEN');
  });

  test('the matrix covers every action with a request', () => {
    expect(Object.keys(REQUESTS).sort()).toEqual(Object.keys(PERMISSIONS).sort());
  });

  test('a viewer leaves with their login key (PLATFORM.md: the member themself); a read-only key cannot', async () => {
    const viewer = await credentials(`leaver-${uniq()}@example.com`);
    const sc = await scene(viewer, 'viewer');
    const readOnly = await s.seedKey({
      email: (await s.store.users.get(viewer.userId))?.email,
      scopes: ['read'],
    });
    const url = `/v1/orgs/${sc.org.id}/members/${viewer.userId}`;
    const refused = await call({ 'xi-api-key': readOnly.apiKey }, 'DELETE', url);
    expect(refused.status, JSON.stringify(refused.body)).toBe(403);
    const left = await call(viewer.key, 'DELETE', url);
    expect(left.status, JSON.stringify(left.body)).toBe(204);
    expect(await s.store.orgs.membership(sc.org.id, viewer.userId)).toBeFalsy();
  });
});

describe('roles, owners and keys', () => {
  test('the last owner cannot leave or be demoted (409); with a second owner both work', async () => {
    const o = await credentials(`lo-${uniq()}@example.com`);
    const created = await call(o.jwt, 'POST', '/v1/orgs', { name: 'Solo' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'Solo', role: 'owner' });
    const orgId = created.body.id as string;
    expect((await call(o.jwt, 'GET', `/v1/orgs/${orgId}/projects`)).body.data).toEqual([
      expect.objectContaining({ name: 'default', org_id: orgId }),
    ]);
    const demote = await call(o.jwt, 'PATCH', `/v1/orgs/${orgId}/members/${o.userId}`, { role: 'admin' });
    expect(demote.status).toBe(409);
    expect((demote.body.error as { code: string }).code).toBe('CONFLICT');
    expect((await call(o.jwt, 'DELETE', `/v1/orgs/${orgId}/members/${o.userId}`)).status).toBe(409);
    const other = await credentials(`lo2-${uniq()}@example.com`);
    await s.store.orgs.addMember(orgId, other.userId, 'owner');
    expect(
      (await call(o.jwt, 'PATCH', `/v1/orgs/${orgId}/members/${o.userId}`, { role: 'admin' })).status,
    ).toBe(200);
    // now `other` is the last owner
    expect((await call(other.jwt, 'DELETE', `/v1/orgs/${orgId}/members/${other.userId}`)).status).toBe(409);
  });

  test('two owners demoting each other at once: one stays owner', async () => {
    const a = await credentials(`race-a-${uniq()}@example.com`);
    const b = await credentials(`race-b-${uniq()}@example.com`);
    const { org } = await s.store.transaction((tx) => tx.orgs.create('Race', a.userId));
    await s.store.orgs.addMember(org.id, b.userId, 'owner');
    const [ra, rb] = await Promise.all([
      call(a.jwt, 'PATCH', `/v1/orgs/${org.id}/members/${b.userId}`, { role: 'member' }),
      call(b.jwt, 'PATCH', `/v1/orgs/${org.id}/members/${a.userId}`, { role: 'member' }),
    ]);
    // the second one finds itself demoted (403) or the last owner (409): never both demoted
    expect([ra.status, rb.status].filter((x) => x === 200)).toHaveLength(1);
    expect(await s.store.orgs.countOwners(org.id)).toBe(1);
  });

  test('an admin cannot demote, remove or appoint an owner', async () => {
    const admin = await credentials(`adm-${uniq()}@example.com`);
    const sc = await scene(admin, 'admin');
    const ownerId = (await s.store.orgs.listMembers(sc.org.id)).find((m) => m.role === 'owner')?.user_id;
    expect(
      (await call(admin.jwt, 'PATCH', `/v1/orgs/${sc.org.id}/members/${ownerId}`, { role: 'member' })).status,
    ).toBe(403);
    expect((await call(admin.jwt, 'DELETE', `/v1/orgs/${sc.org.id}/members/${ownerId}`)).status).toBe(403);
    expect(
      (await call(admin.jwt, 'PATCH', `/v1/orgs/${sc.org.id}/members/${sc.target.id}`, { role: 'owner' }))
        .status,
    ).toBe(403);
    expect(
      (await call(admin.jwt, 'PATCH', `/v1/orgs/${sc.org.id}/members/${sc.target.id}`, { role: 'admin' }))
        .status,
    ).toBe(200);
  });

  test("an owner or admin manages another member's key but never rotates it: the new key would act as that member", async () => {
    const admin = await credentials(`rot-${uniq()}@example.com`);
    const sc = await scene(admin, 'admin');
    const ownerId =
      (await s.store.orgs.listMembers(sc.org.id)).find((m) => m.role === 'owner')?.user_id ?? '';
    // the owner's key in the team: its successor would act as the owner, here and in every other
    // organization of theirs (their personal one included)
    const ownerKey = await s.app.breeze.keys.mint({
      userId: ownerId,
      projectId: sc.project.id,
      name: 'owner ci',
      scopes: ['read', 'write', 'admin'],
      expiresAt: null,
      createdVia: 'api',
    });
    for (const cred of [admin.jwt, admin.key]) {
      for (const id of [ownerKey.row.id, sc.targetKey]) {
        const res = await call(cred, 'POST', `/v1/api-keys/${id}/rotate`, { grace_period_s: 0 });
        expect(res.status, `${cred.kind} ${id}`).toBe(403);
        expect(res.body).not.toHaveProperty('api_key');
      }
    }
    // nothing was rotated: both keys still work, and have no successor
    for (const id of [ownerKey.row.id, sc.targetKey])
      expect((await s.store.keys.get(id))?.rotated_at).toBeNull();
    expect((await call({ 'xi-api-key': ownerKey.apiKey }, 'GET', '/v1/me')).status).toBe(200);
    // managing them otherwise still works
    expect((await call(admin.jwt, 'POST', `/v1/api-keys/${sc.targetKey}/disable`)).status).toBe(200);
    // the key's own user rotates it, as before
    const ownerJwt = { authorization: `Bearer ${(await jwt.issue(ownerId)).token}` };
    const own = await call(ownerJwt, 'POST', `/v1/api-keys/${ownerKey.row.id}/rotate`, { grace_period_s: 0 });
    expect(own.status).toBe(201);
    expect(own.body.api_key).toMatch(/^brz_/);
  });

  test("a member's key: capped at read,write; narrowed at once by a role change; 401 once removed", async () => {
    const owner = await credentials(`kown-${uniq()}@example.com`);
    const mate = await credentials(`kmate-${uniq()}@example.com`);
    const { org, project } = await s.store.transaction((tx) => tx.orgs.create('Capped', owner.userId));
    await s.store.orgs.addMember(org.id, mate.userId, 'member');
    const created = await call(mate.jwt, 'POST', '/v1/api-keys', {
      name: 'mate key',
      project_id: project.id,
      scopes: ['read', 'write'],
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ org_id: org.id, project_id: project.id, created_by: mate.userId });
    // a member cannot mint an admin key: the role caps what the session holds there
    expect(
      (await call(mate.jwt, 'POST', '/v1/api-keys', { name: 'x', project_id: project.id, scopes: ['admin'] }))
        .status,
    ).toBe(403);
    const key = { 'xi-api-key': created.body.api_key as string };
    const me = await call(key, 'GET', '/v1/me');
    expect(me.body).toMatchObject({
      auth: { scopes: ['read', 'write'] },
      org: { id: org.id, name: 'Capped', role: 'member' },
      project: { id: project.id, name: 'default' },
    });
    // cached now; a role change must still narrow it at once
    expect(
      (await call(owner.jwt, 'PATCH', `/v1/orgs/${org.id}/members/${mate.userId}`, { role: 'viewer' }))
        .status,
    ).toBe(200);
    expect((await call(key, 'GET', '/v1/me')).body).toMatchObject({
      auth: { scopes: ['read'] },
      org: { role: 'viewer' },
    });
    // owners see every key of the org, the viewer only its own
    const ownerList = await call(owner.jwt, 'GET', `/v1/api-keys?org_id=${org.id}`);
    expect((ownerList.body.data as { key_id: string }[]).map((k) => k.key_id)).toContain(created.body.key_id);
    const other = await call(owner.jwt, 'POST', '/v1/api-keys', {
      name: 'owner key',
      project_id: project.id,
    });
    const mateList = await call(mate.jwt, 'GET', `/v1/api-keys?project_id=${project.id}`);
    expect((mateList.body.data as { key_id: string }[]).map((k) => k.key_id)).toEqual([created.body.key_id]);
    expect((await call(mate.jwt, 'GET', `/v1/api-keys/${other.body.key_id}`)).status).toBe(404);
    // the owner manages the member's key
    expect((await call(owner.jwt, 'GET', `/v1/api-keys/${created.body.key_id}`)).status).toBe(200);
    expect((await call(owner.jwt, 'DELETE', `/v1/orgs/${org.id}/members/${mate.userId}`)).status).toBe(204);
    const refused = await call(key, 'GET', '/v1/me');
    expect(refused.status).toBe(401);
    expect((refused.body.error as { code: string }).code).toBe('AUTH_REQUIRED');
    // ...and the ex-member sees nothing of the org any more
    expect((await call(mate.jwt, 'GET', `/v1/orgs/${org.id}/members`)).status).toBe(404);
  });

  test('a project of another organization is 404 on create and list; a project with keys is 409', async () => {
    const a = await credentials(`pa-${uniq()}@example.com`);
    const b = await credentials(`pb-${uniq()}@example.com`);
    const sc = await scene(b, 'owner');
    expect((await call(a.jwt, 'POST', '/v1/api-keys', { name: 'x', project_id: sc.project.id })).status).toBe(
      404,
    );
    expect((await call(a.key, 'GET', `/v1/api-keys?project_id=${sc.project.id}`)).status).toBe(404);
    expect((await call(a.jwt, 'GET', `/v1/api-keys/${sc.targetKey}`)).status).toBe(404);
    const p = await call(b.jwt, 'POST', `/v1/orgs/${sc.org.id}/projects`, { name: 'busy' });
    expect((await call(b.jwt, 'POST', `/v1/orgs/${sc.org.id}/projects`, { name: 'busy' })).status).toBe(409);
    await call(b.jwt, 'POST', '/v1/api-keys', { name: 'k', project_id: p.body.id });
    expect((await call(b.jwt, 'DELETE', `/v1/projects/${p.body.id}`)).status).toBe(409);
    expect((await call(b.jwt, 'DELETE', `/v1/projects/${sc.project.id}`)).status).toBe(409);
  });

  test("GET /v1/orgs lists the caller's orgs with roles; /v1/me for a JWT names the personal org", async () => {
    const u = await credentials(`lst-${uniq()}@example.com`);
    const sc = await scene(u, 'viewer');
    const list = await call(u.key, 'GET', '/v1/orgs');
    expect((list.body.data as { id: string; role: string }[]).map((o) => [o.id, o.role])).toEqual(
      expect.arrayContaining([[sc.org.id, 'viewer']]),
    );
    const me = await call(u.jwt, 'GET', '/v1/me');
    expect(me.body).toMatchObject({ org: { role: 'owner' }, auth: { scopes: ['read', 'write', 'admin'] } });
    const inOrg = await call(u.jwt, 'GET', `/v1/me?org_id=${sc.org.id}`);
    expect(inOrg.body).toMatchObject({ org: { id: sc.org.id, role: 'viewer' }, auth: { scopes: ['read'] } });
    expect((await call(u.jwt, 'GET', '/v1/me?org_id=org_00000000000000000000000000')).status).toBe(404);
    // a key asked about another organization of its user: capped by the role there, no project (its
    // project belongs to its own organization)
    const keyElsewhere = await call(u.key, 'GET', `/v1/me?org_id=${sc.org.id}`);
    expect(keyElsewhere.body).toMatchObject({
      org: { id: sc.org.id, role: 'viewer' },
      auth: { scopes: ['read'] },
    });
    expect(keyElsewhere.body.project).toBeUndefined();
  });

  test('org and project names are text fields: control characters are 400 on every route', async () => {
    const u = await credentials(`txt-${uniq()}@example.com`);
    for (const name of ['a\u0000b', 'tab\there', '', '   ', 'x'.repeat(101)]) {
      expect((await call(u.jwt, 'POST', '/v1/orgs', { name })).status).toBe(400);
    }
    const sc = await scene(u, 'owner');
    expect((await call(u.jwt, 'POST', `/v1/orgs/${sc.org.id}/projects`, { name: 'a\u0007' })).status).toBe(
      400,
    );
  });
});

describe('invitations', () => {
  async function invite(by: Cred, orgId: string, email: string, role = 'member') {
    const before = mails.length;
    const res = await call(by, 'POST', `/v1/orgs/${orgId}/invitations`, { email, role });
    const mail = mails.slice(before).find((m) => m.to === email.toLowerCase());
    const code = /invitation code is ([0-9A-Z]{8})\b/.exec(mail?.text ?? '')?.[1];
    return { res, mail, code };
  }

  test('mailed with subject, link and code; valid 7 days; accepted once by the invited email only', async () => {
    const owner = await credentials(`iown-${uniq()}@example.com`);
    const { org } = await s.store.transaction((tx) => tx.orgs.create('Invite Co', owner.userId));
    const guestEmail = `guest-${uniq()}@example.com`;
    const { res, mail, code } = await invite(owner.jwt, org.id, guestEmail.toUpperCase());
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ id: expect.stringMatching(/^inv_/), email: guestEmail, role: 'member' });
    const days = (Date.parse(res.body.expires_at as string) - Date.now()) / 86400_000;
    expect(days).toBeGreaterThan(6.99);
    expect(days).toBeLessThanOrEqual(7);
    expect(mail?.subject).toBe('You are invited to Invite Co on Breeze');
    // a link to the sign-in page (a page that exists), and how to accept with the code
    expect(mail?.text).toContain(`${s.app.breeze.config.publicUrl}/login`);
    expect(mail?.text).toContain(`breeze invitations accept ${res.body.id} --code `);
    expect((await s.app.inject({ url: '/login' })).statusCode).toBe(200);
    expect(code).toMatch(/^[0-9A-Z]{8}$/);
    // the code is stored as a hash only
    const row = await s.store.invitations.get(res.body.id as string);
    expect(JSON.stringify(row)).not.toContain(code);

    const guest = await credentials(guestEmail);
    const stranger = await credentials(`stranger-${uniq()}@example.com`);
    const url = `/v1/invitations/${res.body.id}/accept`;
    expect((await call(stranger.jwt, 'POST', url, { code })).status).toBe(404);
    expect((await call(guest.jwt, 'POST', url, { code: 'WRONG123' })).status).toBe(404);
    const ok = await call(guest.key, 'POST', url, { code: code?.toLowerCase() });
    expect(ok.status).toBe(200);
    // the membership, naming the organization joined
    expect(ok.body).toMatchObject({
      user: { id: guest.userId, email: guestEmail },
      role: 'member',
      org_id: org.id,
    });
    expect((await call(guest.jwt, 'POST', url, { code })).status).toBe(404);
    const members = await call(owner.jwt, 'GET', `/v1/orgs/${org.id}/members`);
    expect((members.body.data as { user: { id: string }; role: string }[]).map((m) => m.role)).toEqual([
      'owner',
      'member',
    ]);
  });

  test('a key accepts only with "admin" (like creating an organization); inviting a member is 409', async () => {
    const owner = await credentials(`iadm-${uniq()}@example.com`);
    const { org } = await s.store.transaction((tx) => tx.orgs.create('Key Co', owner.userId));
    const guestEmail = `gk-${uniq()}@example.com`;
    const guest = await credentials(guestEmail);
    const readOnly = await s.seedKey({ email: guestEmail, scopes: ['read', 'write'] });
    const { res, code } = await invite(owner.jwt, org.id, guestEmail);
    const url = `/v1/invitations/${res.body.id}/accept`;
    const refused = await call({ 'xi-api-key': readOnly.apiKey }, 'POST', url, { code });
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ error: { code: 'FORBIDDEN' } });
    // the refusal cost nothing: the invitation still works, for a user credential
    expect((await call(guest.jwt, 'POST', url, { code })).status).toBe(200);

    // inviting someone who is already a member: 409 at once, and no mail
    const again = await invite(owner.jwt, org.id, guestEmail.toUpperCase(), 'admin');
    expect(again.res.status).toBe(409);
    expect(again.res.body).toMatchObject({ error: { code: 'CONFLICT' } });
    expect(again.mail).toBeUndefined();
  });

  test('five wrong codes kill it; an expired one is 404', async () => {
    const owner = await credentials(`ikill-${uniq()}@example.com`);
    const { org } = await s.store.transaction((tx) => tx.orgs.create('Kill Co', owner.userId));
    const guestEmail = `g2-${uniq()}@example.com`;
    const guest = await credentials(guestEmail);
    const { res, code } = await invite(owner.jwt, org.id, guestEmail);
    const url = `/v1/invitations/${res.body.id}/accept`;
    for (let i = 0; i < 5; i++)
      expect((await call(guest.jwt, 'POST', url, { code: `ZZZZZZZ${i}` })).status).toBe(404);
    expect((await call(guest.jwt, 'POST', url, { code })).status).toBe(404);

    const second = await invite(owner.jwt, org.id, guestEmail);
    await s.store.db
      .updateTable('invitations')
      .set({ expires_at: new Date(Date.now() - 1000).toISOString() })
      .where('id', '=', second.res.body.id as string)
      .execute();
    expect(
      (await call(guest.jwt, 'POST', `/v1/invitations/${second.res.body.id}/accept`, { code: second.code }))
        .status,
    ).toBe(404);
  });

  test(`at most ${INVITATIONS_PER_ORG.max} invitations per organization per hour`, async () => {
    const owner = await credentials(`irate-${uniq()}@example.com`);
    const { org } = await s.store.transaction((tx) => tx.orgs.create('Rate Co', owner.userId));
    for (let i = 0; i < INVITATIONS_PER_ORG.max; i++) {
      expect((await invite(owner.jwt, org.id, `r${i}-${uniq()}@example.com`)).res.status).toBe(201);
    }
    const over = await invite(owner.jwt, org.id, `over-${uniq()}@example.com`);
    expect(over.res.status).toBe(429);
    expect(over.mail).toBeUndefined();
    // another organization has its own budget
    const { org: org2 } = await s.store.transaction((tx) => tx.orgs.create('Rate Co 2', owner.userId));
    expect((await invite(owner.jwt, org2.id, `o2-${uniq()}@example.com`)).res.status).toBe(201);
  });

  test(`at most ${ACCEPTS_PER_IP.max} accept attempts per minute from one IP`, async () => {
    const u = await credentials(`acc-${uniq()}@example.com`);
    const statuses: number[] = [];
    for (let i = 0; i <= ACCEPTS_PER_IP.max; i++) {
      const res = await s.app.inject({
        method: 'POST',
        url: `/v1/invitations/inv_${uniq()}/accept`,
        headers: u.jwt.header,
        remoteAddress: '10.9.8.7',
        payload: { code: 'ABCD1234' },
      });
      statuses.push(res.statusCode);
    }
    expect(statuses.slice(0, ACCEPTS_PER_IP.max).every((x) => x === 404)).toBe(true);
    expect(statuses.at(-1)).toBe(429);
  });
});

describe('OpenAPI', () => {
  test('every teams route is documented with a summary, a tag and the error shape', async () => {
    const doc = s.app.swagger() as unknown as {
      paths: Record<
        string,
        Record<string, { summary?: string; tags?: string[]; responses: Record<string, unknown> }>
      >;
    };
    const routes: [string, string, string][] = [
      ['/v1/orgs', 'get', '401'],
      ['/v1/orgs', 'post', '400'],
      ['/v1/orgs/{org_id}/members', 'get', '404'],
      ['/v1/orgs/{org_id}/members/{user_id}', 'patch', '409'],
      ['/v1/orgs/{org_id}/members/{user_id}', 'delete', '409'],
      ['/v1/orgs/{org_id}/invitations', 'post', '403'],
      ['/v1/invitations/{id}/accept', 'post', '404'],
      ['/v1/orgs/{org_id}/projects', 'get', '404'],
      ['/v1/orgs/{org_id}/projects', 'post', '409'],
      ['/v1/projects/{project_id}', 'delete', '409'],
    ];
    for (const [path, method, errorStatus] of routes) {
      const op = doc.paths[path]?.[method];
      expect(op?.summary, `${method} ${path}`).toBeTruthy();
      expect(op?.tags?.length, `${method} ${path}`).toBeGreaterThan(0);
      expect(JSON.stringify(op?.responses[errorStatus]), `${method} ${path}`).toContain('request_id');
    }
  });
});

describe('a verify key and the member list (members.list orScope)', () => {
  test("a verify-only key lists its own organization's members, not those of other organizations its creator manages", async () => {
    const email = `verifier-${uniq()}@example.com`;
    const { apiKey, userId } = await s.seedKey({ email, scopes: ['verify'] });
    const own = await call({ 'xi-api-key': apiKey }, 'GET', '/v1/me');
    const ownOrg = (own.body as { org?: { id: string } }).org?.id ?? '';
    expect(ownOrg).not.toBe('');
    const listed = await call({ 'xi-api-key': apiKey }, 'GET', `/v1/orgs/${ownOrg}/members`);
    expect(listed.status, JSON.stringify(listed.body)).toBe(200);
    // the same user owns another organization: the service's key does not reach its members
    const sc = await scene({ userId }, 'owner');
    const other = await call({ 'xi-api-key': apiKey }, 'GET', `/v1/orgs/${sc.org.id}/members`);
    expect(other.status, JSON.stringify(other.body)).toBe(403);
    expect((other.body.error as { code: string }).code).toBe('FORBIDDEN');
  });
});
