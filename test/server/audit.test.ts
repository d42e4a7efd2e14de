import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ulid } from '../../src/core/ids.js';
import type { JwtService } from '../../src/server/jwt.js';
import type { MailMessage } from '../../src/server/mail/mailer.js';
import { type AuditEvent, newAuditEventId } from '../../src/server/services/audit.js';
import type { AuditRow } from '../../src/server/store/audit.js';
import { InjectBrowser } from '../helpers/browser.js';
import { testEngines } from '../helpers/engines.js';
import type { TestServer } from '../helpers/server.js';

/**
 * Issue 14, the audit log, black-box over HTTP on SQLite and PostgreSQL: an event for every action
 * that exists, with actor, target, organization, IP, user agent and request id; who reads what;
 * paging and filters; no secret in any byte of any event; the event commits with its change or
 * neither does; the retention pruner.
 */

const eng = testEngines();
afterAll(() => eng.stop());

const uniq = () => randomBytes(4).toString('hex');
const UA = 'audit-test/1.0 (+loopback)';

type Headers = Record<string, string>;
interface Res {
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, unknown>;
}

for (const e of eng.list) {
  describe.skipIf(e.skip)(`audit log (${e.name})`, () => {
    let s: TestServer;
    const mails: MailMessage[] = [];
    /** every secret handed out during the suite: none may appear in any event */
    const secrets: string[] = [];
    let ipCounter = 10;
    const nextIp = () => `198.51.100.${ipCounter++}`;

    beforeAll(async () => {
      s = await e.startServer({
        mailer: {
          async send(m) {
            mails.push(m);
          },
        },
        config: { rateLimitPerKey: 0, publicUrl: 'http://127.0.0.1:4455' },
      });
    });
    afterAll(async () => {
      await s?.close();
    });

    async function call(
      headers: Headers,
      method: string,
      url: string,
      payload?: object,
      remoteAddress = '127.0.0.1',
    ): Promise<Res> {
      const res = await s.app.inject({
        method: method as 'GET',
        url,
        headers: { 'user-agent': UA, ...headers },
        remoteAddress,
        ...(payload ? { payload } : {}),
      });
      return {
        status: res.statusCode,
        body: res.body ? (res.json() as Record<string, unknown>) : {},
        headers: res.headers,
      };
    }

    async function waitFor<T>(find: () => T | undefined, what: string): Promise<T> {
      const until = Date.now() + 5000;
      for (;;) {
        const v = find();
        if (v !== undefined) return v;
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    }

    const lastCode = (email: string) => () =>
      [...mails]
        .reverse()
        .find((m) => m.to === email && m.subject.startsWith('Your Breeze code: '))
        ?.subject.replace('Your Breeze code: ', '');

    /** The email-code flow of API.md: a key or a JWT for `email`, from `ip`. */
    async function emailLogin(email: string, type: 'api_key' | 'jwt', ip = nextIp()) {
      const before = lastCode(email)();
      const start = await call({}, 'POST', '/auth/code', { email, type }, ip);
      expect(start.status).toBe(201);
      const code = await waitFor(() => {
        const c = lastCode(email)();
        return c && c !== before ? c : undefined;
      }, 'the code mail');
      secrets.push(code);
      const res = await call(
        {},
        'POST',
        `/auth/code/${start.body.id}/verifications`,
        { code, hostname: 'ada-laptop' },
        ip,
      );
      expect(res.status).toBe(200);
      const secret = (res.body.secret ?? res.body.token) as string;
      secrets.push(secret);
      return { secret, body: res.body, requestId: res.headers['x-request-id'] as string, ip };
    }

    async function userOf(email: string) {
      const u = await s.store.users.findByEmail(email);
      if (!u) throw new Error('no user');
      return u;
    }

    async function personalOrg(email: string): Promise<string> {
      const org = await s.store.orgs.personalOf((await userOf(email)).id);
      if (!org) throw new Error('no personal org');
      return org.id;
    }

    async function events(headers: Headers, query = ''): Promise<AuditEvent[]> {
      const res = await call(headers, 'GET', `/v1/audit-events${query ? `?${query}` : ''}`);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body.data as AuditEvent[];
    }

    const jwtHeader = (token: string): Headers => ({ authorization: `Bearer ${token}` });
    const keyHeader = (key: string): Headers => ({ 'xi-api-key': key });

    function pkce() {
      const verifier = randomBytes(32).toString('base64url');
      const challenge = createHash('sha256').update(verifier).digest('base64url');
      secrets.push(verifier);
      return { verifier, challenge };
    }

    describe('an event for every action', () => {
      const owner = `owner-${uniq()}@example.com`;
      const invitee = `invitee-${uniq()}@example.com`;
      let ownerJwt: string;
      let ownerId: string;
      let orgId: string;

      it('user.signed_in and key.created for an email-code key, in the personal organization, with IP, user agent and request id', async () => {
        const login = await emailLogin(owner, 'api_key');
        ownerId = (await userOf(owner)).id;
        const personal = await personalOrg(owner);
        const list = await events(keyHeader(login.secret));
        const signedIn = list.find((x) => x.action === 'user.signed_in');
        const created = list.find((x) => x.action === 'key.created');
        expect(signedIn).toMatchObject({
          org_id: personal,
          actor: { type: 'user', id: ownerId, email: owner },
          target: { type: 'user', id: ownerId },
          ip: login.ip,
          user_agent: UA,
          request_id: login.requestId,
          details: { method: 'email_code', credential: 'api_key' },
        });
        expect(created).toMatchObject({
          org_id: personal,
          actor: { type: 'user', id: ownerId },
          target: { type: 'key', id: login.body.key_id },
          ip: login.ip,
          request_id: login.requestId,
          details: { created_via: 'email_code' },
        });
        expect(created?.project_id).toMatch(/^proj_/);
        expect(created?.id).toMatch(/^evt_/);
        expect(Date.parse(created?.at ?? '')).toBeGreaterThan(Date.now() - 60_000);
      });

      it('user.signed_in for a JWT and for a browser session', async () => {
        ownerJwt = (await emailLogin(owner, 'jwt')).secret;
        const b = new InjectBrowser(s.app);
        b.remoteAddress = '192.0.2.44';
        await b.signIn(owner, lastCode(owner));
        for (const c of b.cookies.values()) secrets.push(c);
        const list = await events(jwtHeader(ownerJwt), 'action=user.signed_in');
        expect(list.map((x) => x.details.credential)).toEqual(
          expect.arrayContaining(['api_key', 'jwt', 'browser_session']),
        );
        expect(list.find((x) => x.details.credential === 'browser_session')?.ip).toBe('192.0.2.44');
      });

      it('cli_login.approved, cli_login.exchanged (with key.created) and cli_login.denied', async () => {
        const b = new InjectBrowser(s.app);
        await b.signIn(owner, lastCode(owner));
        const start = async () => {
          const { verifier, challenge } = pkce();
          const res = await call({}, 'POST', '/v1/cli/logins', {
            code_challenge: challenge,
            code_challenge_method: 'S256',
            client_name: 'breeze/0.1.0',
            hostname: 'build-box',
          });
          expect(res.status).toBe(201);
          secrets.push(res.body.user_code as string);
          return { verifier, login: res.body };
        };
        const a = await start();
        expect((await b.decide(a.login.user_code as string, 'approve')).statusCode).toBe(200);
        const ex = await call(
          {},
          'POST',
          `/v1/cli/logins/${a.login.login_id}/exchange`,
          { code_verifier: a.verifier },
          '203.0.113.9',
        );
        expect(ex.status).toBe(200);
        secrets.push(ex.body.api_key as string);
        const d = await start();
        expect((await b.decide(d.login.user_code as string, 'deny')).statusCode).toBe(200);

        const list = await events(jwtHeader(ownerJwt));
        const personal = await personalOrg(owner);
        const of = (action: string, id: unknown) =>
          list.find((x) => x.action === action && x.target.id === id);
        expect(of('cli_login.approved', a.login.login_id)).toMatchObject({
          org_id: personal,
          actor: { type: 'user', id: ownerId },
          target: { type: 'cli_login' },
          details: { hostname: 'build-box', mode: 'device' },
        });
        expect(of('cli_login.exchanged', a.login.login_id)).toMatchObject({
          org_id: personal,
          ip: '203.0.113.9',
          details: { key_id: (ex.body.key as { key_id: string }).key_id },
        });
        expect(of('key.created', (ex.body.key as { key_id: string }).key_id)).toMatchObject({
          details: { created_via: 'cli_login' },
          ip: '203.0.113.9',
        });
        expect(of('cli_login.denied', d.login.login_id)).toMatchObject({ org_id: personal });
      });

      it('project, member and key events of a team organization, each with its actor and target', async () => {
        const org = await call(jwtHeader(ownerJwt), 'POST', '/v1/orgs', { name: `Acme ${uniq()}` });
        expect(org.status).toBe(201);
        orgId = org.body.id as string;
        const owned = jwtHeader(ownerJwt);

        const proj = await call(owned, 'POST', `/v1/orgs/${orgId}/projects`, { name: 'api' });
        expect(proj.status).toBe(201);
        const spare = await call(owned, 'POST', `/v1/orgs/${orgId}/projects`, { name: 'spare' });
        expect((await call(owned, 'DELETE', `/v1/projects/${spare.body.id}`)).status).toBe(204);

        const inv = await call(owned, 'POST', `/v1/orgs/${orgId}/invitations`, {
          email: invitee,
          role: 'member',
        });
        expect(inv.status).toBe(201);
        const invMail = await waitFor(
          () => mails.find((m) => m.to === invitee && m.subject.startsWith('You are invited')),
          'the invitation',
        );
        const invCode = /--code (\S+)/.exec(invMail.text)?.[1] ?? '';
        secrets.push(invCode);
        const inviteeJwt = (await emailLogin(invitee, 'jwt')).secret;
        const inviteeId = (await userOf(invitee)).id;
        const accepted = await call(jwtHeader(inviteeJwt), 'POST', `/v1/invitations/${inv.body.id}/accept`, {
          code: invCode,
        });
        expect(accepted.status).toBe(200);
        expect(
          (await call(owned, 'PATCH', `/v1/orgs/${orgId}/members/${inviteeId}`, { role: 'admin' })).status,
        ).toBe(200);

        const key = await call(owned, 'POST', '/v1/api-keys', {
          name: 'ci',
          project_id: proj.body.id,
          scopes: ['read', 'write'],
        });
        expect(key.status).toBe(201);
        secrets.push(key.body.api_key as string);
        const keyId = key.body.key_id as string;
        expect((await call(owned, 'PATCH', `/v1/api-keys/${keyId}`, { name: 'ci-2' })).status).toBe(200);
        expect((await call(owned, 'POST', `/v1/api-keys/${keyId}/disable`)).status).toBe(200);
        expect((await call(owned, 'POST', `/v1/api-keys/${keyId}/enable`)).status).toBe(200);
        const rotated = await call(owned, 'POST', `/v1/api-keys/${keyId}/rotate`, { grace_period_s: 60 });
        expect(rotated.status).toBe(201);
        secrets.push(rotated.body.api_key as string);
        const successor = rotated.body.key_id as string;
        expect((await call(owned, 'DELETE', `/v1/api-keys/${successor}`)).status).toBe(204);
        expect((await call(owned, 'DELETE', `/v1/orgs/${orgId}/members/${inviteeId}`)).status).toBe(204);

        const list = await events(owned, `org_id=${orgId}&limit=200`);
        const actorOwner = { type: 'user', id: ownerId, email: owner };
        const expectEvent = (action: string, target: { type: string; id: unknown }, extra: object = {}) => {
          const found = list.filter((x) => x.action === action && x.target.id === target.id);
          expect(found, action).toHaveLength(1);
          expect(found[0], action).toMatchObject({
            org_id: orgId,
            actor: actorOwner,
            target,
            user_agent: UA,
            ...extra,
          });
          expect(found[0]?.request_id, action).toMatch(/^req_/);
        };
        expectEvent('project.created', { type: 'project', id: proj.body.id }, { project_id: proj.body.id });
        expectEvent(
          'project.deleted',
          { type: 'project', id: spare.body.id },
          { details: { name: 'spare' } },
        );
        expectEvent(
          'member.invited',
          { type: 'invitation', id: inv.body.id },
          { details: { email: invitee, role: 'member' } },
        );
        expect(list.find((x) => x.action === 'member.joined')).toMatchObject({
          actor: { type: 'user', id: inviteeId, email: invitee },
          target: { type: 'user', id: inviteeId },
          details: { role: 'member' },
        });
        expectEvent(
          'member.role_changed',
          { type: 'user', id: inviteeId },
          { details: { from: 'member', to: 'admin' } },
        );
        expectEvent('member.removed', { type: 'user', id: inviteeId }, { details: { role: 'admin' } });
        expect(list.filter((x) => x.action === 'key.created').map((x) => x.target.id)).toEqual([keyId]);
        expectEvent(
          'key.updated',
          { type: 'key', id: keyId },
          { details: { changes: { name: { from: 'ci', to: 'ci-2' } } }, project_id: proj.body.id },
        );
        expectEvent('key.disabled', { type: 'key', id: keyId });
        expectEvent('key.enabled', { type: 'key', id: keyId });
        expectEvent('key.rotated', { type: 'key', id: keyId }, { details: { new_key_id: successor } });
        expectEvent('key.deleted', { type: 'key', id: successor });
        // newest first
        const ids = list.map((x) => x.id);
        expect([...ids].sort().reverse()).toEqual(ids);
      });

      it('a key acting is the actor, with its key id', async () => {
        const key = await call(jwtHeader(ownerJwt), 'POST', '/v1/api-keys', {
          name: 'admin key',
          scopes: ['read', 'write', 'admin'],
        });
        secrets.push(key.body.api_key as string);
        const made = await call(keyHeader(key.body.api_key as string), 'POST', '/v1/api-keys', {
          name: 'child',
        });
        expect(made.status).toBe(201);
        secrets.push(made.body.api_key as string);
        const list = await events(jwtHeader(ownerJwt), `key_id=${made.body.key_id}`);
        expect(list).toHaveLength(1);
        expect(list[0]).toMatchObject({
          action: 'key.created',
          actor: { type: 'key', id: ownerId, email: owner, key_id: key.body.key_id },
        });
        // key_id also finds what a key did
        const byKey = await events(jwtHeader(ownerJwt), `key_id=${key.body.key_id}`);
        expect(byKey.map((x) => x.action).sort()).toEqual(['key.created', 'key.created']);
      });

      it("key_id of a rotation's successor finds the key.rotated that created it, not its predecessor's other events", async () => {
        const made = await call(jwtHeader(ownerJwt), 'POST', '/v1/api-keys', { name: 'to rotate' });
        expect(made.status).toBe(201);
        secrets.push(made.body.api_key as string);
        const rotated = await call(
          jwtHeader(ownerJwt),
          'POST',
          `/v1/api-keys/${made.body.key_id}/rotate`,
          {},
        );
        expect(rotated.status).toBe(201);
        secrets.push(rotated.body.api_key as string);
        const successor = rotated.body.key_id as string;
        const next = await call(jwtHeader(ownerJwt), 'POST', `/v1/api-keys/${successor}/disable`);
        expect(next.status).toBe(200);
        const list = await events(jwtHeader(ownerJwt), `key_id=${successor}`);
        expect(list.map((x) => x.action)).toEqual(['key.disabled', 'key.rotated']);
        expect(list[1]).toMatchObject({
          target: { type: 'key', id: made.body.key_id },
          details: { new_key_id: successor },
        });
        // the predecessor's own list is unchanged: its creation and its rotation
        const before = await events(jwtHeader(ownerJwt), `key_id=${made.body.key_id}`);
        expect(before.map((x) => x.action)).toEqual(['key.rotated', 'key.created']);
        // still there once the successor is deleted (its row is gone; the log is not)
        const gone = await call(jwtHeader(ownerJwt), 'DELETE', `/v1/api-keys/${successor}`);
        expect(gone.status).toBe(204);
        const after = await events(jwtHeader(ownerJwt), `key_id=${successor}`);
        expect(after.map((x) => x.action)).toEqual(['key.deleted', 'key.disabled', 'key.rotated']);
      });

      it('a user agent with control characters is recorded without them (PostgreSQL refuses NUL)', async () => {
        const made = await call(
          { ...jwtHeader(ownerJwt), 'user-agent': 'evil\u0000agent\u001b[31m/1\u0085' },
          'POST',
          '/v1/api-keys',
          { name: 'ua' },
        );
        expect(made.status).toBe(201);
        secrets.push(made.body.api_key as string);
        const gone = await call(
          { ...keyHeader(made.body.api_key as string), 'user-agent': '\u0000' },
          'DELETE',
          `/v1/api-keys/${made.body.key_id}`,
        );
        expect(gone.status).toBe(204);
        const list = await events(jwtHeader(ownerJwt), `key_id=${made.body.key_id}`);
        expect(list.find((x) => x.action === 'key.created')?.user_agent).toBe('evilagent[31m/1');
        expect(list.find((x) => x.action === 'key.deleted')?.user_agent).toBeNull();
      });
    });

    describe('who reads what', () => {
      let orgId: string;
      let ownerH: Headers;
      let adminH: Headers;
      let memberH: Headers;
      let outsiderH: Headers;
      let memberId: string;
      let memberKeyId: string;

      beforeAll(async () => {
        const jwt = (s.app as unknown as { jwtService: JwtService }).jwtService;
        const mk = async (role: string) => {
          const email = `${role}-${uniq()}@example.com`;
          const seeded = await s.seedKey({ email, scopes: ['read', 'write', 'admin'] });
          secrets.push(seeded.apiKey);
          const token = (await jwt.issue(seeded.userId)).token;
          secrets.push(token);
          return { ...seeded, h: jwtHeader(token) };
        };
        const o = await mk('owner');
        const a = await mk('admin');
        const m = await mk('member');
        const x = await mk('outsider');
        ownerH = o.h;
        adminH = a.h;
        memberH = m.h;
        outsiderH = x.h;
        memberId = m.userId;
        const org = await call(ownerH, 'POST', '/v1/orgs', { name: 'Visibility' });
        orgId = org.body.id as string;
        await s.store.orgs.addMember(orgId, a.userId, 'admin');
        await s.store.orgs.addMember(orgId, m.userId, 'member');
        const projects = await call(ownerH, 'GET', `/v1/orgs/${orgId}/projects`);
        const projectId = (projects.body.data as { id: string }[])[0]?.id;
        // the owner's key, the member's key (made by the member), and the owner disabling the member's key
        const ownerKey = await call(ownerH, 'POST', '/v1/api-keys', { name: 'owner', project_id: projectId });
        expect(ownerKey.status).toBe(201);
        secrets.push(ownerKey.body.api_key as string);
        const memberKey = await call(memberH, 'POST', '/v1/api-keys', {
          name: 'member',
          project_id: projectId,
        });
        expect(memberKey.status).toBe(201);
        secrets.push(memberKey.body.api_key as string);
        memberKeyId = memberKey.body.key_id as string;
        expect((await call(ownerH, 'POST', `/v1/api-keys/${memberKeyId}/disable`)).status).toBe(200);
      });

      it('owners and admins read the whole organization', async () => {
        for (const h of [ownerH, adminH]) {
          const list = await events(h, `org_id=${orgId}`);
          expect(list.map((x) => x.action).sort()).toEqual(['key.created', 'key.created', 'key.disabled']);
        }
      });

      it('a member reads only events they made or whose target is theirs', async () => {
        const list = await events(memberH, `org_id=${orgId}`);
        // their key's creation (actor) and the owner disabling it (target theirs); not the owner's key
        expect(list.map((x) => x.action).sort()).toEqual(['key.created', 'key.disabled']);
        expect(list.every((x) => x.actor.id === memberId || x.target.id === memberKeyId)).toBe(true);
        expect(list.find((x) => x.action === 'key.disabled')?.actor.id).not.toBe(memberId);
      });

      it('another organization is 404, its existence never shown', async () => {
        const res = await call(outsiderH, 'GET', `/v1/audit-events?org_id=${orgId}`);
        expect(res.status).toBe(404);
        expect((res.body.error as { code: string }).code).toBe('NOT_FOUND');
        const unknown = await call(
          outsiderH,
          'GET',
          '/v1/audit-events?org_id=org_01AAAAAAAAAAAAAAAAAAAAAAAA',
        );
        expect(unknown.status).toBe(404);
        // the same answer as for an organization that does not exist
        expect((unknown.body.error as { message: string }).message).toBe(
          (res.body.error as { message: string }).message,
        );
      });

      it("without org_id: the key's organization (its personal one here)", async () => {
        const list = await events(outsiderH);
        expect(list.every((x) => x.org_id !== orgId)).toBe(true);
        expect((await call({}, 'GET', '/v1/audit-events')).status).toBe(401);
      });
    });

    describe('paging and filters', () => {
      let h: Headers;
      let keyIds: string[];
      let userId: string;

      beforeAll(async () => {
        const seeded = await s.seedKey({ email: `pager-${uniq()}@example.com` });
        secrets.push(seeded.apiKey);
        h = keyHeader(seeded.apiKey);
        userId = seeded.userId;
        keyIds = [];
        for (let i = 0; i < 7; i++) {
          const k = await call(h, 'POST', '/v1/api-keys', { name: `k${i}` });
          secrets.push(k.body.api_key as string);
          keyIds.push(k.body.key_id as string);
        }
        await call(h, 'POST', `/v1/api-keys/${keyIds[0]}/disable`);
      });

      it('pages newest first with an opaque cursor, no duplicates, no gaps', async () => {
        const all = await events(h, 'limit=200');
        const seen: AuditEvent[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const res = await call(
            h,
            'GET',
            `/v1/audit-events?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
          );
          expect(res.status).toBe(200);
          const data = res.body.data as AuditEvent[];
          expect(data.length).toBeLessThanOrEqual(3);
          seen.push(...data);
          cursor = res.body.next_cursor as string | null;
          if (cursor) expect(cursor).not.toContain('evt_');
          pages++;
        } while (cursor && pages < 20);
        expect(seen.map((x) => x.id)).toEqual(all.map((x) => x.id));
        expect(new Set(seen.map((x) => x.id)).size).toBe(seen.length);
        // 7 keys created + the seed key + one disable
        expect(all.length).toBe(9);
        expect(pages).toBe(3);
        expect(all[0]?.action).toBe('key.disabled');
      });

      it('filters by action, key, actor and since', async () => {
        expect((await events(h, 'action=key.disabled')).map((x) => x.target.id)).toEqual([keyIds[0]]);
        expect((await events(h, `key_id=${keyIds[3]}`)).map((x) => x.action)).toEqual(['key.created']);
        expect((await events(h, `actor_id=${userId}`)).length).toBe(8);
        expect(await events(h, 'actor_id=usr_01AAAAAAAAAAAAAAAAAAAAAAAA')).toEqual([]);
        expect((await events(h, 'since=1h')).length).toBe(9);
        const future = new Date(Date.now() + 3600_000).toISOString();
        expect(await events(h, `since=${encodeURIComponent(future)}`)).toEqual([]);
        expect((await events(h, `since=${encodeURIComponent('2020-01-01T00:00:00Z')}`)).length).toBe(9);
        expect((await events(h, `since=${encodeURIComponent('2020-02-29T00:00:00.5+02:00')}`)).length).toBe(
          9,
        );
      });

      it('bad filters are 400 in the error shape', async () => {
        for (const q of [
          'action=key.exploded',
          'limit=0',
          'limit=201',
          'limit=abc',
          'since=yesterday',
          'since=24x',
          // RFC 3339 only: not a day the month lacks, a time without its offset, or trailing bytes
          'since=2026-02-30T00:00:00Z',
          'since=2026-01-01T24:00:00Z',
          'since=2026-01-01T00:00:00',
          'since=2026-01-01T00:00:00Z%00',
          'since=2026-01-01T00:00:00%00',
          'cursor=bm90LWEtY3Vyc29y',
          'cursor=%00',
          'key_id=%00',
          'key_id=not%20an%20id',
          'actor_id=%E2%80%AE',
          'org_id=..%2F..',
          `action=${'a'.repeat(5000)}`,
        ]) {
          const res = await call(h, 'GET', `/v1/audit-events?${q}`);
          expect(res.status, q).toBe(400);
          const err = res.body.error as { code: string; message: string };
          expect(err.code, q).toBe('VALIDATION_FAILED');
          expect(typeof err.message).toBe('string');
        }
      });
    });

    describe("a key's events", () => {
      it('are read from its creation on, with an hour of slack for instance clocks, none lost', async () => {
        // a key minted ten days ago, in an organization with a long log around it
        const orgId = `org_${ulid()}`;
        const keyMs = Date.now() - 10 * 86_400_000;
        const keyId = `key_${ulid(keyMs)}`;
        const row = (atMs: number, over: Partial<AuditRow>): AuditRow => ({
          id: newAuditEventId(atMs),
          at: new Date(atMs).toISOString(),
          org_id: orgId,
          project_id: null,
          action: 'key.updated',
          actor_type: 'user',
          actor_id: 'usr_x',
          actor_email: null,
          actor_key_id: null,
          target_type: 'key',
          target_id: 'key_other',
          target_owner_id: null,
          ip: null,
          user_agent: null,
          request_id: null,
          details: '{}',
          ...over,
        });
        const rows = [
          row(keyMs - 30 * 86_400_000, {}),
          // impossible (before the key existed, past any clock slack): outside the bound
          row(keyMs - 2 * 3_600_000, { target_id: keyId, action: 'key.disabled' }),
          // another instance, its clock 30 minutes behind, recorded the key's creation
          row(keyMs - 30 * 60_000, { target_id: keyId, action: 'key.created' }),
          row(keyMs, {}),
          row(keyMs + 86_400_000, { actor_type: 'key', actor_key_id: keyId, action: 'project.created' }),
          row(keyMs + 2 * 86_400_000, { target_id: keyId, action: 'key.rotated' }),
          row(keyMs + 3 * 86_400_000, {}),
          // a key id that is no ULID (none is minted so, but the filter takes any): no bound
          row(keyMs - 40 * 86_400_000, { target_id: 'key_imported', action: 'key.deleted' }),
        ];
        await s.store.transaction(async (tx) => {
          for (const r of rows) await tx.audit.insert(r);
        });
        const found = await s.store.audit.list({ orgId, keyId, limit: 50 });
        expect(found.map((r) => r.action)).toEqual(['key.rotated', 'project.created', 'key.created']);
        const other = await s.store.audit.list({ orgId, keyId: 'key_imported', limit: 50 });
        expect(other.map((r) => r.action)).toEqual(['key.deleted']);
      });
    });

    describe('the change and its event commit together', () => {
      it('when the audit insert fails, the key is not created (and nothing else changes)', async () => {
        const seeded = await s.seedKey({ email: `tx-${uniq()}@example.com` });
        secrets.push(seeded.apiKey);
        const h = keyHeader(seeded.apiKey);
        const victim = await call(h, 'POST', '/v1/api-keys', { name: 'victim' });
        secrets.push(victim.body.api_key as string);
        const count = async () =>
          (
            await s.store.db
              .selectFrom('api_keys')
              .select('id')
              .where('user_id', '=', seeded.userId)
              .execute()
          ).length;
        const before = await count();
        await s.store.db.schema.alterTable('audit_events').renameTo('audit_events_gone').execute();
        try {
          const res = await call(h, 'POST', '/v1/api-keys', { name: 'no event, no key' });
          expect(res.status).toBe(500);
          expect(JSON.stringify(res.body)).not.toContain('brz_');
          expect(await count()).toBe(before);
          // disable, rotate and delete roll back too
          expect((await call(h, 'POST', `/v1/api-keys/${victim.body.key_id}/disable`)).status).toBe(500);
          expect((await call(h, 'POST', `/v1/api-keys/${victim.body.key_id}/rotate`)).status).toBe(500);
          expect((await call(h, 'DELETE', `/v1/api-keys/${victim.body.key_id}`)).status).toBe(500);
          const row = await s.store.keys.get(victim.body.key_id as string);
          expect(row).toMatchObject({ disabled_at: null, rotated_at: null });
          expect(await count()).toBe(before);
        } finally {
          await s.store.db.schema.alterTable('audit_events_gone').renameTo('audit_events').execute();
        }
        expect((await call(h, 'POST', '/v1/api-keys', { name: 'fine again' })).status).toBe(201);
      });

      it('a failing sink rolls the change back as well', async () => {
        const seeded = await s.seedKey({ email: `sink-${uniq()}@example.com` });
        secrets.push(seeded.apiKey);
        let fail = true;
        s.app.breeze.audit.addSink(async () => {
          if (fail) throw new Error('sink down');
        });
        try {
          const res = await call(keyHeader(seeded.apiKey), 'POST', '/v1/api-keys', { name: 'sunk' });
          expect(res.status).toBe(500);
          const rows = await s.store.db
            .selectFrom('api_keys')
            .select('name')
            .where('user_id', '=', seeded.userId)
            .execute();
          expect(rows.map((r) => r.name)).toEqual(['seed']);
        } finally {
          fail = false;
        }
      });

      it('of writes committed together (SQLite groups them), a failing one loses its event and keeps the others', async () => {
        const seeded = await s.seedKey({ email: `group-${uniq()}@example.com` });
        secrets.push(seeded.apiKey);
        let failing: string | null = `failing-${uniq()}`;
        s.app.breeze.audit.addSink(async (_tx, event) => {
          if (event.details.name === failing) throw new Error('sink down');
        });
        const names = [`kept-a-${uniq()}`, failing, `kept-b-${uniq()}`];
        try {
          // started in one turn of the event loop: on SQLite, one group, one commit
          const results = await Promise.allSettled(
            names.map((name) =>
              s.app.breeze.keys.mint({
                userId: seeded.userId,
                name,
                scopes: ['read'],
                expiresAt: null,
                createdVia: 'api',
              }),
            ),
          );
          expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
        } finally {
          failing = null;
        }
        const keys = await s.store.db
          .selectFrom('api_keys')
          .select('name')
          .where('user_id', '=', seeded.userId)
          .execute();
        expect(keys.map((r) => r.name).sort()).toEqual(['seed', names[0], names[2]].sort());
        const events = await s.store.db
          .selectFrom('audit_events')
          .select('details')
          .where('action', '=', 'key.created')
          .where('target_owner_id', '=', seeded.userId)
          .execute();
        const named = events.map((e) => (JSON.parse(e.details) as { name: string }).name);
        expect(named).toContain(names[0]);
        expect(named).toContain(names[2]);
        expect(named).not.toContain(names[1]);
      });
    });

    describe('no secret in any event', () => {
      it('the bytes of every stored event and every answer hold no key, code, session, JWT or verifier', async () => {
        expect(secrets.length).toBeGreaterThan(20);
        const rows = await s.store.db.selectFrom('audit_events').selectAll().execute();
        expect(rows.length).toBeGreaterThan(30);
        const stored = JSON.stringify(rows);
        for (const secret of secrets) {
          expect(secret.length).toBeGreaterThanOrEqual(8);
          expect(stored.includes(secret), `a secret of ${secret.length} chars in an event`).toBe(false);
        }
        // a key's 12-character prefix may appear; the key itself never, nor its random part
        expect(stored).not.toMatch(/brz_[0-9A-Za-z]{13,}/);
      });
    });
  });
}

for (const e of eng.list) {
  describe.skipIf(e.skip)(`audit log order within one millisecond (${e.name})`, () => {
    it('events recorded in the same millisecond list newest first in the order they happened', async () => {
      const frozen = Date.now();
      const s = await e.startServer({ clock: () => new Date(frozen), config: { rateLimitPerKey: 0 } });
      try {
        const seeded = await s.seedKey({ email: `frozen-${frozen}@example.com` });
        const h = { 'xi-api-key': seeded.apiKey };
        const expected: string[] = [];
        // 40 changes at one clock reading: random ULIDs would list them in a random order
        for (let i = 0; i < 10; i++) {
          const made = await s.app.inject({
            method: 'POST',
            url: '/v1/api-keys',
            headers: h,
            payload: { name: `k${i}` },
          });
          expect(made.statusCode).toBe(201);
          const id = made.json().key_id as string;
          for (const step of ['disable', 'enable', 'disable'] as const) {
            const res = await s.app.inject({ method: 'POST', url: `/v1/api-keys/${id}/${step}`, headers: h });
            expect(res.statusCode).toBe(200);
          }
          expected.push('key.created', 'key.disabled', 'key.enabled', 'key.disabled');
        }
        const res = await s.app.inject({ url: '/v1/audit-events?limit=100', headers: h });
        expect(res.statusCode).toBe(200);
        const data = res.json().data as AuditEvent[];
        expect(new Set(data.map((x) => x.at))).toEqual(new Set([new Date(frozen).toISOString()]));
        // newest first, after the seed key's own creation
        expect(data.map((x) => x.action)).toEqual([...expected.reverse(), 'key.created']);
      } finally {
        await s.close();
      }
    });
  });
}
