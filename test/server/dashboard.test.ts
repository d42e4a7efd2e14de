import { createHash } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MailMessage } from '../../src/server/mail/mailer.js';
import { INVITATIONS_PER_ORG } from '../../src/server/routes/invitations.js';
import { formFields, InjectBrowser, submission, waitForNewCode } from '../helpers/browser.js';
import { CONTROL_SAMPLES, testEngines } from '../helpers/engines.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Issue 17, the dashboard over HTTP (app.inject, a browser simulated without JavaScript): every
 * action is a form POST with the session's CSRF token, answered by a redirect and a flash; the
 * plaintext of a key is in the answer to its POST only; roles decide what each page shows.
 */
const eng = testEngines();
afterAll(() => eng.stop());

const KEY_RE = /<output id="new-key"[^>]*>([^<]+)<\/output>/;

for (const e of eng.list) {
  describe.skipIf(e.skip)(`dashboard pages (${e.name})`, () => {
    let server: TestServer;
    const mails: MailMessage[] = [];
    const lastCode = (email: string) => () =>
      [...mails]
        .reverse()
        .find((m) => m.to === email && m.subject.startsWith('Your Breeze code'))
        ?.subject.replace('Your Breeze code: ', '');

    beforeAll(async () => {
      server = await e.startServer({
        mailer: {
          async send(m) {
            mails.push(m);
          },
        },
        config: { publicUrl: 'http://127.0.0.1:4455' },
      });
    });
    afterAll(async () => {
      await server?.close();
    });

    /** `ip`: another client address, for tests past the sign-in limit of one address */
    async function signedIn(email: string, ip?: string): Promise<InjectBrowser> {
      const b = new InjectBrowser(server.app);
      if (ip) b.remoteAddress = ip;
      await b.signIn(email, lastCode(email));
      return b;
    }

    /** Follows a 303 like a browser (GET of its Location). */
    async function follow(b: InjectBrowser, res: LightMyRequestResponse): Promise<LightMyRequestResponse> {
      expect(res.statusCode, res.body).toBe(303);
      return b.get(String(res.headers.location));
    }

    async function createKey(b: InjectBrowser, name: string, scopes = ['read'], query = '') {
      const form = await b.get(`/keys/new${query}`);
      expect(form.statusCode).toBe(200);
      const body = submission(form.body, '/keys/new', { name, scopes });
      const res = await b.post('/keys/new', body);
      return { res, body };
    }

    it('/ sends a stranger to /login and a signed-in browser to /keys', async () => {
      const anon = await server.app.inject({ url: '/' });
      expect(anon.statusCode).toBe(303);
      expect(anon.headers.location).toBe('/login');
      // signing in there, with the forms as they are (no `next` anywhere), ends on the dashboard
      const fresh = new InjectBrowser(server.app);
      const login = await fresh.get('/login');
      const sent = await fresh.post('/login', {
        ...formFields(login.body, '/login'),
        email: 'plain@example.com',
      });
      expect(sent.statusCode).toBe(200);
      const code = await waitForNewCode(lastCode('plain@example.com'), undefined);
      const done = await fresh.post('/login/code', {
        ...formFields(sent.body, '/login/code'),
        code: code ?? '',
      });
      expect(done.statusCode).toBe(303);
      expect(done.headers.location).toBe('/keys');
      const b = await signedIn('root@example.com');
      const res = await b.get('/');
      expect(res.headers.location).toBe('/keys');
      const keys = await b.get('/keys');
      expect(keys.statusCode).toBe(200);
      // the empty state teaches the CLI
      expect(keys.body).toContain('breeze login');
      expect(keys.body).toContain('breeze keys create');
    });

    it('every page: strict CSP with one same-origin script, no-store, not frameable; signed out -> /login', async () => {
      const b = await signedIn('csp@example.com');
      const { res } = await createKey(b, 'csp key');
      const id = /href="\/keys\/(key_[0-9A-Z]+)"/.exec(res.body)?.[1] ?? '';
      const org = (
        await server.store.orgs.listForUser(
          (await server.store.users.findByEmail('csp@example.com'))?.id ?? '',
        )
      )[0]?.id;
      for (const url of [
        '/keys',
        '/keys/new',
        `/keys/${id}`,
        `/keys/${id}/delete`,
        '/account',
        `/orgs/${org}`,
      ]) {
        const page = await b.get(url);
        expect(page.statusCode, url).toBe(200);
        const csp = String(page.headers['content-security-policy']);
        expect(csp).toContain("script-src 'self'");
        expect(csp).toContain("default-src 'none'");
        expect(csp).not.toContain('unsafe-inline');
        expect(page.headers['cache-control']).toBe('no-store');
        expect(page.headers['x-frame-options']).toBe('DENY');
        expect(page.body).not.toMatch(/<script(?![^>]*src="\/assets\/dashboard\.js")/);
        expect(page.body).not.toMatch(/ style="/);
        const anon = await server.app.inject({ url });
        expect(anon.statusCode, url).toBe(303);
        expect(String(anon.headers.location)).toMatch(/^\/login\?next=/);
      }
      const js = await server.app.inject({ url: '/assets/dashboard.js' });
      expect(js.statusCode).toBe(200);
      expect(js.headers['content-type']).toMatch(/javascript/);
    });

    it('create shows the plaintext once (201, no-store); the key works; a resubmitted form makes no second key', async () => {
      const b = await signedIn('creator@example.com');
      const { res, body } = await createKey(b, 'billing <prod>', ['read', 'write']);
      expect(res.statusCode, res.body).toBe(201);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body).toContain('billing &lt;prod&gt;');
      const apiKey = KEY_RE.exec(res.body)?.[1] ?? '';
      expect(apiKey).toMatch(/^brz_/);
      const me = await server.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${apiKey}` } });
      expect(me.statusCode).toBe(200);
      // reload = the same POST again: no new key, no plaintext
      const again = await b.post('/keys/new', body);
      expect(again.statusCode).toBe(303);
      expect(again.body).not.toContain(apiKey);
      const list = await b.get(String(again.headers.location));
      expect(list.body).not.toContain(apiKey);
      expect(list.body).toContain('was sent already');
      expect(list.body.match(/billing &lt;prod&gt;/g)?.length).toBe(1);
      // the detail page never shows it either
      const id = /href="\/keys\/(key_[0-9A-Z]+)"/.exec(list.body)?.[1] ?? '';
      expect((await b.get(`/keys/${id}`)).body).not.toContain(apiKey);
    });

    it('a refused form sent again (a reload of its 400 page) is refused for the same reason, not as "sent already"', async () => {
      const b = await signedIn('refused@example.com', '198.51.100.21');
      const form = await b.get('/keys/new');
      const body = submission(form.body, '/keys/new', { name: '', scopes: ['read'] });
      for (let i = 0; i < 2; i++) {
        const res = await b.post('/keys/new', body);
        expect(res.statusCode).toBe(400);
        expect(res.body).toContain('Give the key a name');
      }
      // the same token with the name filled in makes the key: it was never used
      body.set('name', 'named at last');
      const made = await b.post('/keys/new', body);
      expect(made.statusCode, made.body).toBe(201);
      expect((await b.post('/keys/new', body)).statusCode).toBe(303);
    });

    it('the same form sent again to another instance (one database, no sticky sessions) makes no second key', async () => {
      const other = await startTestServer({
        store: server.store,
        mailer: { async send() {} },
        config: { publicUrl: 'http://127.0.0.1:4455' },
      });
      try {
        const a = await signedIn('balanced@example.com', '198.51.100.22');
        const { res, body } = await createKey(a, 'balanced key');
        expect(res.statusCode, res.body).toBe(201);
        const apiKey = KEY_RE.exec(res.body)?.[1] ?? '';
        // the browser's reload lands on the other instance: same cookies, same POST
        const b = new InjectBrowser(other.app);
        b.remoteAddress = a.remoteAddress;
        for (const [k, v] of a.cookies) b.cookies.set(k, v);
        const again = await b.post('/keys/new', body);
        expect(again.statusCode).toBe(303);
        expect(again.body).not.toContain(apiKey);
        const list = await b.get(String(again.headers.location));
        expect(list.statusCode).toBe(200);
        expect(list.body).toContain('was sent already');
        expect(list.body).not.toContain(apiKey);
        const named = await server.store.db
          .selectFrom('api_keys')
          .select('id')
          .where('name', '=', 'balanced key')
          .execute();
        expect(named).toHaveLength(1);
        // a new form from that instance still works, and the used token is stored as a hash only
        const second = await createKey(b, 'balanced second');
        expect(second.res.statusCode).toBe(201);
        const used = await server.store.db
          .selectFrom('used_form_tokens')
          .select(['id', 'expires_at'])
          .execute();
        // both tokens, each kept until the session ends (not longer)
        const user = await server.store.users.findByEmail('balanced@example.com');
        const session = await server.store.db
          .selectFrom('browser_sessions')
          .select(['id', 'expires_at'])
          .where('user_id', '=', user?.id ?? '')
          .executeTakeFirstOrThrow();
        for (const form of [body, second.body]) {
          const id = server.app.breeze.hasher(`form-token:${session.id}:${form.get('nonce') ?? ''}`);
          expect(used.find((u) => u.id === id)?.expires_at).toBe(session.expires_at);
        }
        const nonce = body.get('nonce') ?? '';
        expect(nonce).toMatch(/^[A-Za-z0-9_-]{16,}$/);
        expect(JSON.stringify(used)).not.toContain(nonce);
      } finally {
        await other.close();
      }
    });

    it('rename, scopes, rotate (new plaintext once, old key in grace), disable, enable, delete after a confirmation', async () => {
      const b = await signedIn('ops@example.com');
      const created = await createKey(b, 'ops key', ['read', 'write']);
      const apiKey = KEY_RE.exec(created.res.body)?.[1] ?? '';
      const id = /href="\/keys\/(key_[0-9A-Z]+)"/.exec(created.res.body)?.[1] ?? '';
      let page = await b.get(`/keys/${id}`);

      page = await follow(
        b,
        await b.post(
          `/keys/${id}/rename`,
          submission(page.body, `/keys/${id}/rename`, { name: 'renamed key' }),
        ),
      );
      expect(page.body).toContain('Renamed to “renamed key”');
      const bad = await b.post(
        `/keys/${id}/rename`,
        submission(page.body, `/keys/${id}/rename`, { name: `x${CONTROL_SAMPLES[0]}y` }),
      );
      page = await follow(b, bad);
      expect(page.body).toContain('Give the key a name');

      const scoped = await b.post(
        `/keys/${id}/scopes`,
        submission(page.body, `/keys/${id}/scopes`, { scopes: ['read'] }),
      );
      page = await follow(b, scoped);
      expect(page.body).toContain('Scopes of “renamed key”: read.');

      // disable: the key stops working at once; enable: it works again
      page = await follow(
        b,
        await b.post(`/keys/${id}/disable`, submission(page.body, `/keys/${id}/disable`)),
      );
      expect(page.body).toContain('is disabled');
      expect(
        (await server.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${apiKey}` } }))
          .statusCode,
      ).toBe(401);
      page = await follow(b, await b.post(`/keys/${id}/enable`, submission(page.body, `/keys/${id}/enable`)));
      expect(
        (await server.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${apiKey}` } }))
          .statusCode,
      ).toBe(200);

      // rotate with a 1 hour grace: the new plaintext once, both keys work
      const rotateFields = submission(page.body, `/keys/${id}/rotate`, { grace_period_s: '3600' });
      const rotated = await b.post(`/keys/${id}/rotate`, rotateFields);
      expect(rotated.statusCode).toBe(201);
      const newKey = KEY_RE.exec(rotated.body)?.[1] ?? '';
      expect(newKey).toMatch(/^brz_/);
      expect(newKey).not.toBe(apiKey);
      for (const k of [apiKey, newKey]) {
        expect(
          (await server.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${k}` } })).statusCode,
        ).toBe(200);
      }
      // resubmitting the rotation shows no plaintext: 303 with the service's refusal
      const twice = await b.post(`/keys/${id}/rotate`, rotateFields);
      expect(twice.statusCode).toBe(303);
      expect((await b.get(String(twice.headers.location))).body).toContain('already rotated');

      // delete: the confirmation page names the key; the POST deletes it
      const newId = /href="\/keys\/(key_[0-9A-Z]+)"/.exec(rotated.body)?.[1] ?? '';
      const confirm = await b.get(`/keys/${newId}/delete`);
      expect(confirm.body).toContain('Delete the key “renamed key”?');
      const gone = await follow(
        b,
        await b.post(`/keys/${newId}/delete`, submission(confirm.body, `/keys/${newId}/delete`)),
      );
      expect(gone.body).toContain('Deleted “renamed key”');
      expect(
        (await server.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${newKey}` } }))
          .statusCode,
      ).toBe(401);
      expect((await b.get(`/keys/${newId}`)).statusCode).toBe(404);
    });

    it('a POST without the CSRF token, or from another origin, changes nothing (403)', async () => {
      const b = await signedIn('csrf@example.com');
      const created = await createKey(b, 'csrf key');
      const id = /href="\/keys\/(key_[0-9A-Z]+)"/.exec(created.res.body)?.[1] ?? '';
      expect((await b.post(`/keys/${id}/disable`, {})).statusCode).toBe(403);
      const page = await b.get(`/keys/${id}`);
      const fields = submission(page.body, `/keys/${id}/disable`);
      expect(
        (
          await b.post(`/keys/${id}/disable`, fields, {
            origin: 'http://evil.example',
            'sec-fetch-site': 'cross-site',
          })
        ).statusCode,
      ).toBe(403);
      expect((await b.get(`/keys/${id}`)).body).toContain('status active');
    });

    it('sign out everywhere: every session of the user stops working, others are untouched', async () => {
      const one = await signedIn('everywhere@example.com');
      const two = await signedIn('everywhere@example.com');
      const other = await signedIn('bystander@example.com');
      const account = await one.get('/account');
      expect(account.body).toContain('this browser');
      expect(account.body.match(/Sign out this session/g)?.length).toBe(1);
      const res = await one.post(
        '/account/sessions/revoke-all',
        submission(account.body, '/account/sessions/revoke-all'),
      );
      expect(res.statusCode).toBe(303);
      expect(res.headers.location).toBe('/login');
      expect((await two.get('/keys')).statusCode).toBe(303);
      expect((await one.get('/keys')).statusCode).toBe(303);
      expect((await other.get('/keys')).statusCode).toBe(200);
    });

    it('signs out one other session from the account page', async () => {
      const one = await signedIn('single@example.com');
      const two = await signedIn('single@example.com');
      const account = await one.get('/account');
      const action = /action="(\/account\/sessions\/[^"]+\/revoke)"/.exec(account.body)?.[1] ?? '';
      const res = await follow(one, await one.post(action, submission(account.body, action)));
      expect(res.body).toContain('That session is signed out.');
      expect((await two.get('/keys')).statusCode).toBe(303);
      expect((await one.get('/keys')).statusCode).toBe(200);
    });

    it("a flash message shows only in the session it was set for: a forged one, or another session's, shows nothing", async () => {
      const a = await signedIn('flash-a@example.com', '127.0.0.64');
      const b = await signedIn('flash-b@example.com', '127.0.0.65');
      // a real flash for a: signing out a session that does not exist
      const account = await a.get('/account');
      const posted = await a.post(
        '/account/sessions/ses_01JZZZZZZZZZZZZZZZZZZZZZZZ/revoke',
        submission(account.body, '/account/sessions/revoke-all'),
      );
      expect(posted.statusCode, posted.body).toBe(303);
      const flashOfA = a.cookies.get('breeze_flash') ?? '';
      expect(flashOfA).not.toBe('');
      // b's browser given a's flash cookie: nothing shows (and it is cleared)
      b.cookies.set('breeze_flash', flashOfA);
      const seenByB = await b.get('/account');
      expect(seenByB.statusCode).toBe(200);
      expect(seenByB.body).not.toContain('class="flash');
      expect(b.cookies.has('breeze_flash')).toBe(false);
      // a sees its own, once
      const seenByA = await a.get('/account');
      expect(seenByA.body).toContain(
        '<div class="flash error" role="alert">No such session: it ended already.</div>',
      );
      expect((await a.get('/account')).body).not.toContain('class="flash');
      // forged: a message signed the way anyone can (plain SHA-256, as without a pepper), in a's own
      // signed-in browser
      const payload = Buffer.from(
        JSON.stringify({ k: 'error', t: 'Your account is locked: call +1 555 0100 to unlock it.' }),
      ).toString('base64url');
      const sha = createHash('sha256').update(`flash:${payload}`).digest('base64url');
      for (const forged of [`${payload}.${sha}`, `${payload}.${flashOfA.split('.')[1]}`, payload]) {
        a.cookies.set('breeze_flash', forged);
        const page = await a.get('/account');
        expect(page.statusCode).toBe(200);
        expect(page.body).not.toContain('class="flash');
        expect(page.body).not.toContain('account is locked');
      }
    });

    it('/keys filters by project', async () => {
      const email = 'proj-filter@example.com';
      const b = await signedIn(email);
      const { apiKey } = await server.seedKey({ email });
      const api = async (method: 'GET' | 'POST', url: string, payload?: object) => {
        const res = await server.app.inject({ method, url, headers: { 'xi-api-key': apiKey }, payload });
        expect(res.statusCode, res.body).toBeLessThan(300);
        return res.json();
      };
      const orgId = (await api('GET', '/v1/me')).org.id as string;
      const backend = await api('POST', `/v1/orgs/${orgId}/projects`, { name: 'backend' });
      await api('POST', '/v1/api-keys', { name: 'key in backend', project_id: backend.id });
      await api('POST', '/v1/api-keys', { name: 'key in default' });
      const all = await b.get(`/keys?org_id=${orgId}`);
      expect(all.body).toContain('key in backend');
      expect(all.body).toContain('key in default');
      const only = await b.get(`/keys?org_id=${orgId}&project_id=${backend.id}`);
      expect(only.statusCode).toBe(200);
      expect(only.body).toContain('key in backend');
      expect(only.body).not.toContain('key in default');
    });

    it('the account page lists the keys of CLI logins you approved, and no other key', async () => {
      const b = await signedIn('cli-approver@example.com');
      const me = await server.store.users.ensure('cli-approver@example.com');
      const stranger = await server.store.users.ensure('cli-stranger@example.com');
      const mint = (userId: string, name: string, createdVia: 'cli_login' | 'api') =>
        server.app.breeze.keys.mint({ userId, name, scopes: ['read'], expiresAt: null, createdVia });
      const mine = await mint(me.id, 'laptop cli login', 'cli_login');
      await mint(me.id, 'made through the api', 'api');
      await mint(stranger.id, 'someone else cli login', 'cli_login');
      const account = await b.get('/account');
      expect(account.statusCode).toBe(200);
      const section = account.body.slice(account.body.indexOf('id="h-cli"'));
      expect(section).toContain('laptop cli login');
      expect(section).toContain(mine.row.id);
      expect(account.body).not.toContain('made through the api');
      expect(account.body).not.toContain('someone else cli login');
      expect(account.body).not.toContain(mine.apiKey);
    });

    it('the account page does not call a CLI-login key of an organization you left active: it says it no longer works', async () => {
      const b = await signedIn('cli-leaver@example.com', '127.0.0.63');
      const me = await server.store.users.ensure('cli-leaver@example.com');
      const boss = await server.store.users.ensure('cli-boss@example.com');
      const { org, project } = await server.store.transaction((tx) => tx.orgs.create('Left Co', boss.id));
      await server.store.orgs.addMember(org.id, me.id, 'member');
      const mint = (name: string, projectId?: string) =>
        server.app.breeze.keys.mint({
          userId: me.id,
          name,
          scopes: ['read'],
          expiresAt: null,
          createdVia: 'cli_login',
          ...(projectId ? { projectId } : {}),
        });
      const kept = await mint('home cli login');
      const gone = await mint('work cli login', project.id);
      const removed = await server.app.inject({
        method: 'DELETE',
        url: `/v1/orgs/${org.id}/members/${me.id}`,
        headers: { 'xi-api-key': (await server.seedKey({ email: 'cli-boss@example.com' })).apiKey },
      });
      expect(removed.statusCode, removed.body).toBe(204);
      // what the page must be truthful about: the key of the organization left answers 401
      const me401 = async (apiKey: string) =>
        (await server.app.inject({ url: '/v1/me', headers: { 'xi-api-key': apiKey } })).statusCode;
      expect(await me401(gone.apiKey)).toBe(401);
      expect(await me401(kept.apiKey)).toBe(200);
      const account = await b.get('/account');
      expect(account.statusCode).toBe(200);
      const section = account.body.slice(account.body.indexOf('id="h-cli"'));
      const goneRow = section.split('<tr>').find((r) => r.includes('work cli login')) ?? '';
      const keptRow = section.split('<tr>').find((r) => r.includes('home cli login')) ?? '';
      expect(keptRow).toContain('status active');
      expect(keptRow).toContain(`href="/keys/${kept.row.id}"`);
      expect(goneRow).toContain(gone.row.prefix);
      expect(goneRow).not.toContain('status active');
      expect(goneRow).toContain('not a member');
      expect(section).toContain('belongs to an organization you are no longer a member of');
      // its page is 404 to someone who is no member of its organization: no link to it
      expect(goneRow).not.toContain(`href="/keys/${gone.row.id}"`);
      expect((await b.get(`/keys/${gone.row.id}`)).statusCode).toBe(404);
    });

    it('a member sees only what the role allows: own keys, capped scopes with the reason, no invitation section', async () => {
      const owner = await signedIn('team-owner@example.com');
      const ownerId = (await server.store.users.findByEmail('team-owner@example.com'))?.id ?? '';
      const { org } = await server.store.transaction((tx) => tx.orgs.create('Acme & Co', ownerId));
      const viewerUser = await server.store.users.ensure('team-viewer@example.com');
      await server.store.orgs.addMember(org.id, viewerUser.id, 'viewer');
      // the owner makes a key in the team
      const form = await owner.get(`/keys/new?org_id=${org.id}`);
      const made = await owner.post(
        '/keys/new',
        submission(form.body, '/keys/new', { name: 'owner secret key', scopes: 'admin', expires_in_s: '' }),
      );
      expect(made.statusCode, made.body).toBe(201);

      const viewer = await signedIn('team-viewer@example.com');
      const list = await viewer.get(`/keys?org_id=${org.id}`);
      expect(list.statusCode).toBe(200);
      expect(list.body).not.toContain('owner secret key');
      const ownerKeyId = /href="\/keys\/(key_[0-9A-Z]+)"/.exec(made.body)?.[1] ?? '';
      expect((await viewer.get(`/keys/${ownerKeyId}`)).statusCode).toBe(404);
      const newForm = await viewer.get(`/keys/new?org_id=${org.id}`);
      expect(newForm.body).toMatch(/value="write" disabled/);
      expect(newForm.body).toMatch(/value="admin" disabled/);
      expect(newForm.body).toContain('Your role in Acme &amp; Co is <strong>viewer</strong>');
      // a crafted POST asking for admin is refused by the service (no key made)
      const crafted = await viewer.post(
        '/keys/new',
        submission(newForm.body, '/keys/new', { name: 'sneaky', scopes: 'admin', expires_in_s: '' }),
      );
      expect(crafted.statusCode).toBe(403);
      expect(crafted.body).not.toMatch(KEY_RE);
      const orgPage = await viewer.get(`/orgs/${org.id}`);
      expect(orgPage.statusCode).toBe(200);
      expect(orgPage.body).not.toContain('Invitations');
      expect(orgPage.body).not.toContain('Create project');
      expect(orgPage.body).not.toContain('/remove');
      const ownerPage = await owner.get(`/orgs/${org.id}`);
      expect(ownerPage.body).toContain('Invitations');
      expect(ownerPage.body).toContain('Create project');
      // a viewer's crafted invitation POST is refused by authz (flash, no mail)
      const before = mails.length;
      const inv = await follow(
        viewer,
        await viewer.post(`/orgs/${org.id}/invitations`, {
          csrf: submission(orgPage.body, '/logout').get('csrf') ?? '',
          email: 'x@example.com',
          role: 'member',
        }),
      );
      expect(inv.body).toContain('cannot do this');
      expect(mails.length).toBe(before);
      // a stranger: 404 for the organization
      const stranger = await signedIn('stranger@example.com');
      expect((await stranger.get(`/orgs/${org.id}`)).statusCode).toBe(404);
      expect((await stranger.get(`/keys?org_id=${org.id}`)).statusCode).toBe(404);
      // and for the form actions on what is not theirs: 404 like the pages, and nothing happens
      const strangerCsrf = submission((await stranger.get('/keys')).body, '/logout').get('csrf') ?? '';
      const viewerCsrf = submission(orgPage.body, '/logout').get('csrf') ?? '';
      for (const [who, csrf] of [
        [stranger, strangerCsrf],
        [viewer, viewerCsrf],
      ] as const) {
        for (const action of ['disable', 'enable', 'rename', 'scopes', 'rotate', 'delete']) {
          const res = await who.post(`/keys/${ownerKeyId}/${action}`, {
            csrf,
            name: 'taken',
            scopes: 'read',
            grace_period_s: '0',
          });
          expect(res.statusCode, `${action}: ${res.body.slice(0, 200)}`).toBe(404);
        }
      }
      const still = await server.store.keys.get(ownerKeyId);
      expect(still?.name).toBe('owner secret key');
      expect(still?.disabled_at).toBeNull();
      expect(still?.rotated_at).toBeNull();
      const mailsBefore = mails.length;
      const strangerPost = await stranger.post(`/orgs/${org.id}/invitations`, {
        csrf: strangerCsrf,
        email: 'y@example.com',
        role: 'member',
      });
      expect(strangerPost.statusCode).toBe(404);
      expect(mails.length).toBe(mailsBefore);
    });

    it("an admin manages the owner's key but cannot rotate it (the new key would act as the owner): no form, a forged POST mints nothing", async () => {
      const owner = await signedIn('rot-owner@example.com');
      const ownerId = (await server.store.users.findByEmail('rot-owner@example.com'))?.id ?? '';
      const { org } = await server.store.transaction((tx) => tx.orgs.create('Rotations', ownerId));
      const adminUser = await server.store.users.ensure('rot-admin@example.com');
      await server.store.orgs.addMember(org.id, adminUser.id, 'admin');
      const form = await owner.get(`/keys/new?org_id=${org.id}`);
      const made = await owner.post(
        '/keys/new',
        submission(form.body, '/keys/new', { name: 'owner deploy key', scopes: ['read', 'write', 'admin'] }),
      );
      expect(made.statusCode, made.body).toBe(201);
      const keyId = /href="\/keys\/(key_[0-9A-Z]+)"/.exec(made.body)?.[1] ?? '';

      const admin = await signedIn('rot-admin@example.com', '127.0.0.61');
      const page = await admin.get(`/keys/${keyId}`);
      expect(page.statusCode).toBe(200);
      expect(page.body).not.toContain(`action="/keys/${keyId}/rotate"`);
      expect(page.body).toContain('Only the member who created this key can rotate it');
      // the admin may still disable it
      expect(page.body).toContain(`action="/keys/${keyId}/disable"`);
      const csrf = submission(page.body, '/logout').get('csrf') ?? '';
      const forged = await admin.post(`/keys/${keyId}/rotate`, { csrf, grace_period_s: '0' });
      expect(forged.statusCode).toBe(303);
      expect(forged.body).not.toMatch(KEY_RE);
      expect((await follow(admin, forged)).body).toContain(
        'Only the member who created this key can rotate it',
      );
      expect((await server.store.keys.get(keyId))?.rotated_at).toBeNull();
      // its owner still rotates it from the same page
      const own = await owner.get(`/keys/${keyId}`);
      const rotated = await owner.post(
        `/keys/${keyId}/rotate`,
        submission(own.body, `/keys/${keyId}/rotate`, { grace_period_s: '0' }),
      );
      expect(rotated.statusCode).toBe(201);
      expect(rotated.body).toMatch(KEY_RE);
    });

    it('the owner invites and revokes, creates and deletes a project, changes a role', async () => {
      const owner = await signedIn('boss@example.com');
      const bossId = (await server.store.users.findByEmail('boss@example.com'))?.id ?? '';
      const { org } = await server.store.transaction((tx) => tx.orgs.create('Org Two', bossId));
      const mate = await server.store.users.ensure('mate@example.com');
      await server.store.orgs.addMember(org.id, mate.id, 'member');
      let page = await owner.get(`/orgs/${org.id}`);
      page = await follow(
        owner,
        await owner.post(
          `/orgs/${org.id}/invitations`,
          submission(page.body, `/orgs/${org.id}/invitations`, { email: 'new@example.com', role: 'admin' }),
        ),
      );
      expect(page.body).toContain('Invitation sent to new@example.com (admin).');
      expect(mails.some((m) => m.to === 'new@example.com')).toBe(true);
      const revoke = /action="(\/orgs\/[^"]+\/invitations\/[^"]+\/revoke)"/.exec(page.body)?.[1] ?? '';
      page = await follow(owner, await owner.post(revoke, submission(page.body, revoke)));
      expect(page.body).toContain('Invitation revoked');
      expect(page.body).toContain('No open invitations.');
      page = await follow(
        owner,
        await owner.post(
          `/orgs/${org.id}/projects`,
          submission(page.body, `/orgs/${org.id}/projects`, { name: 'backend' }),
        ),
      );
      expect(page.body).toContain('Project “backend” created.');
      const del = /action="(\/orgs\/[^"]+\/projects\/[^"]+\/delete)"/.exec(page.body)?.[1] ?? '';
      page = await follow(owner, await owner.post(del, submission(page.body, del)));
      expect(page.body).toContain('Project “backend” deleted.');
      const roleAction = `/orgs/${org.id}/members/${mate.id}/role`;
      page = await follow(
        owner,
        await owner.post(roleAction, submission(page.body, roleAction, { role: 'viewer' })),
      );
      expect(page.body).toContain('mate@example.com is now viewer.');
      expect((await server.store.orgs.membership(org.id, mate.id))?.role).toBe('viewer');
    });

    it("the hourly cap on an organization's invitations counts the dashboard's and the API's alike", async () => {
      const email = 'inviter@example.com';
      const owner = await signedIn(email, '127.0.0.62');
      const ownerId = (await server.store.users.findByEmail(email))?.id ?? '';
      const { org } = await server.store.transaction((tx) => tx.orgs.create('Invites', ownerId));
      const { apiKey } = await server.seedKey({ email });
      for (let i = 0; i < INVITATIONS_PER_ORG.max; i++) {
        const res = await server.app.inject({
          method: 'POST',
          url: `/v1/orgs/${org.id}/invitations`,
          headers: { 'xi-api-key': apiKey },
          payload: { email: `api-${i}@example.com`, role: 'member' },
        });
        expect(res.statusCode, res.body).toBe(201);
      }
      const page = await owner.get(`/orgs/${org.id}`);
      const sent = await owner.post(
        `/orgs/${org.id}/invitations`,
        submission(page.body, `/orgs/${org.id}/invitations`, {
          email: 'one-more@example.com',
          role: 'member',
        }),
      );
      const after = await follow(owner, sent);
      expect(after.body).toContain('class="flash error"');
      expect(after.body).toContain('Too many');
      expect(mails.some((m) => m.to === 'one-more@example.com')).toBe(false);
      expect(after.body).not.toContain('<td>one-more@example.com</td>');
    });

    it('bad input never yields a 5xx: odd ids, control characters, repeated fields, JSON bodies', async () => {
      const b = await signedIn('odd-input@example.com');
      // ~25 POSTs to /keys/new: an address of its own, so the page's rate limit (30 a minute per
      // address, shared with the other tests of this server) does not answer 429 first
      b.remoteAddress = '127.0.0.77';
      const form = await b.get('/keys/new');
      const base = submission(form.body, '/keys/new', { name: 'fine' });
      const cases: [string, URLSearchParams][] = [];
      for (const c of CONTROL_SAMPLES) {
        cases.push([
          '/keys/new',
          new URLSearchParams({
            ...Object.fromEntries(base),
            name: `a${c}b`,
            nonce: `n${cases.length}`.padEnd(22, 'x'),
          }),
        ]);
        cases.push([
          '/keys/new',
          new URLSearchParams({
            ...Object.fromEntries(base),
            project_id: `proj_${c}`,
            nonce: `p${cases.length}`.padEnd(22, 'x'),
          }),
        ]);
      }
      const repeated = new URLSearchParams(base);
      repeated.append('csrf', 'second');
      cases.push(['/keys/new', repeated]);
      for (const [url, body] of cases) {
        const res = await b.post(url, body);
        expect(res.statusCode, `${url} ${body}`).toBeLessThan(500);
        expect(res.statusCode).not.toBe(201);
      }
      for (const url of [
        '/keys?org_id=%00',
        '/keys?status=%1b',
        '/keys?project_id=x%00',
        '/keys/key_%00',
        '/orgs/org_%01',
        '/keys/new?org_id=org_NOPE',
        '/keys?cursor=%ff%fe',
      ]) {
        const res = await b.get(url);
        expect(res.statusCode, url).toBeLessThan(500);
      }
      const json = await server.app.inject({
        method: 'POST',
        url: '/keys/new',
        remoteAddress: b.remoteAddress,
        headers: { 'content-type': 'application/json', cookie: b.cookieHeader(), origin: b.origin },
        payload: JSON.stringify({ csrf: ['x'], name: { a: 1 }, scopes: 5 }),
      });
      expect(json.statusCode).toBe(403);
    });

    it('paging: 50 keys a page with a next link; a status filter; a foreign cursor falls back to page one', async () => {
      const b = await signedIn('pager@example.com');
      const user = await server.store.users.findByEmail('pager@example.com');
      for (let i = 0; i < 55; i++) {
        await server.app.breeze.keys.mint({
          userId: user?.id ?? '',
          name: `k${i}`,
          scopes: ['read'],
          expiresAt: null,
          createdVia: 'api',
        });
      }
      const first = await b.get('/keys');
      expect(first.body.match(/<tr>\n<td><a href="\/keys\//g)?.length).toBe(50);
      const next = /href="([^"]+)" rel="next"/.exec(first.body)?.[1]?.replaceAll('&amp;', '&') ?? '';
      const second = await b.get(next);
      expect(second.body.match(/<tr>\n<td><a href="\/keys\//g)?.length).toBe(5);
      expect(second.body).toContain('First page');
      const disabled = await b.get('/keys?status=disabled');
      expect(disabled.body).toContain('No keys match this filter.');
      const bogus = await b.get('/keys?cursor=nonsense');
      expect(bogus.statusCode).toBe(303);
    });
  });
}
