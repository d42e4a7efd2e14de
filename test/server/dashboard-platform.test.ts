import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MailMessage } from '../../src/server/mail/mailer.js';
import { InjectBrowser, submission } from '../helpers/browser.js';
import { testEngines } from '../helpers/engines.js';
import type { TestServer } from '../helpers/server.js';
import { type Receiver, startReceiver } from '../helpers/webhook-receiver.js';

/**
 * Issue 17 round 2, the dashboard's platform sections over HTTP (no JavaScript), on both engines:
 * the 24 h requests column, a key's usage chart and events, the audit log page with its filters and
 * the API's visibility, and the organization's webhooks, OIDC trusts and leak policy for the roles
 * that may use them. Every write goes through the same services as the API (its audit event says
 * who did it, from where).
 */
const eng = testEngines();
afterAll(() => eng.stop());

const KEY_RE = /<output id="new-key"[^>]*>([^<]+)<\/output>/;

for (const e of eng.list) {
  describe.skipIf(e.skip)(`dashboard platform sections (${e.name})`, () => {
    let server: TestServer;
    let rx: Receiver;
    const mails: MailMessage[] = [];
    let n = 0;
    const lastCode = (email: string) => () =>
      [...mails]
        .reverse()
        .find((m) => m.to === email && m.subject.startsWith('Your Breeze code'))
        ?.subject.replace('Your Breeze code: ', '');

    beforeAll(async () => {
      rx = await startReceiver();
      server = await e.startServer({
        mailer: {
          async send(m) {
            mails.push(m);
          },
        },
        config: { publicUrl: 'http://127.0.0.1:4455', allowPrivateWebhooks: true, rateLimitPerKey: 0 },
      });
    });
    afterAll(async () => {
      await server?.close();
      await rx?.close();
    });

    async function signedIn(email: string): Promise<InjectBrowser> {
      const b = new InjectBrowser(server.app);
      // an address per browser: the pages' per-address rate limits stay out of the way
      b.remoteAddress = `127.0.1.${++n}`;
      await b.signIn(email, lastCode(email));
      return b;
    }

    async function follow(b: InjectBrowser, res: LightMyRequestResponse): Promise<LightMyRequestResponse> {
      expect(res.statusCode, res.body).toBe(303);
      return b.get(String(res.headers.location));
    }

    async function createKey(
      b: InjectBrowser,
      name: string,
      query = '',
      scopes = ['read', 'write', 'admin'],
    ) {
      const form = await b.get(`/keys/new${query}`);
      const res = await b.post('/keys/new', submission(form.body, '/keys/new', { name, scopes }));
      expect(res.statusCode, res.body).toBe(201);
      const id = /href="\/keys\/(key_[0-9A-Z]{26})"/.exec(res.body)?.[1] ?? '';
      return { id, apiKey: KEY_RE.exec(res.body)?.[1] ?? '' };
    }

    async function team(ownerEmail: string, memberEmail: string) {
      const owner = await signedIn(ownerEmail);
      const ownerId = (await server.store.users.findByEmail(ownerEmail))?.id ?? '';
      const { org } = await server.store.transaction((tx) =>
        tx.orgs.create(`Team of ${ownerEmail}`, ownerId),
      );
      const memberUser = await server.store.users.ensure(memberEmail);
      await server.store.orgs.addMember(org.id, memberUser.id, 'member');
      const member = await signedIn(memberEmail);
      return { owner, member, org, memberId: memberUser.id, ownerId };
    }

    it('/keys shows each key’s requests of the last 24 hours; the key page a usage chart and its events', async () => {
      const b = await signedIn('usage@example.com');
      const busy = await createKey(b, 'busy key');
      const idle = await createKey(b, 'idle key');
      for (let i = 0; i < 3; i++) {
        const me = await server.app.inject({
          url: '/v1/me',
          headers: { authorization: `Bearer ${busy.apiKey}` },
        });
        expect(me.statusCode).toBe(200);
      }
      const list = await b.get('/keys');
      expect(list.statusCode).toBe(200);
      expect(list.body).toContain('Requests (24 h)');
      const row = (name: string) =>
        new RegExp(`${name}</a></td>[\\s\\S]*?<td class="num">(\\d+)</td>`).exec(list.body)?.[1];
      expect(row('busy key')).toBe('3');
      expect(row('idle key')).toBe('0');

      // the chart: server-rendered SVG with a title and description, the numbers as a table too
      const page = await b.get(`/keys/${busy.id}`);
      expect(page.statusCode).toBe(200);
      expect(page.body).toMatch(
        /<svg class="chart"[^>]*role="img"[^>]*aria-labelledby="usage-title usage-desc"/,
      );
      expect(page.body).toContain('<title id="usage-title">Requests per hour, last 7 days (UTC)</title>');
      expect(page.body).toMatch(/<desc id="usage-desc">3 requests in the last 7 days, 0 of them refused/);
      expect(page.body).toMatch(/<td class="num">3<\/td><td class="num">0<\/td>/);
      expect(page.body).not.toContain('<script>');
      const month = await b.get(`/keys/${busy.id}?usage=30d`);
      expect(month.body).toContain('Requests per day, last 30 days (UTC)');
      expect((await b.get(`/keys/${idle.id}`)).body).toContain('No requests in the last 7 days.');

      // events: newest first, the page's own writes with who did them
      const rename = `/keys/${busy.id}/rename`;
      await follow(b, await b.post(rename, submission(page.body, rename, { name: 'busy key 2' })));
      const after = await b.get(`/keys/${busy.id}`);
      const events = after.body.slice(after.body.indexOf('id="h-events"'));
      const updated = events.indexOf('key.updated');
      const created = events.indexOf('key.created');
      expect(updated).toBeGreaterThan(0);
      expect(created).toBeGreaterThan(updated);
      expect(events).toContain('usage@example.com');
      // the event recorded by the page carries the browser's address, like the API's
      const [ev] = (
        await server.app.inject({
          url: `/v1/audit-events?action=key.updated&key_id=${busy.id}`,
          headers: { authorization: `Bearer ${busy.apiKey}` },
        })
      ).json().data;
      expect(ev.actor).toMatchObject({ type: 'user', email: 'usage@example.com' });
      expect(ev.ip).toBe(b.remoteAddress);
    });

    it('a key’s events are paged: 20 on the page, older ones behind a link', async () => {
      const b = await signedIn('many-events@example.com');
      const k = await createKey(b, 'k0');
      for (let i = 1; i <= 21; i++) {
        const res = await server.app.inject({
          method: 'PATCH',
          url: `/v1/api-keys/${k.id}`,
          headers: { authorization: `Bearer ${k.apiKey}` },
          payload: { name: `k${i}` },
        });
        expect(res.statusCode, res.body).toBe(200);
      }
      const page = await b.get(`/keys/${k.id}`);
      const section = page.body.slice(page.body.indexOf('id="h-events"'));
      expect(section.match(/<code>key\.updated<\/code>/g)?.length).toBe(20);
      const older = /href="(\/keys\/[^"]+events_cursor=[^"#]+)/.exec(section)?.[1]?.replaceAll('&amp;', '&');
      expect(older).toBeTruthy();
      const next = await b.get(older ?? '');
      const rest = next.body.slice(next.body.indexOf('id="h-events"'));
      expect(rest.match(/<code>key\.updated<\/code>/g)?.length).toBe(1);
      expect(rest).toContain('<code>key.created</code>');
      // a cursor not of ours: the newest events, not an error
      expect((await b.get(`/keys/${k.id}?events_cursor=bm9wZQ`)).statusCode).toBe(200);
    });

    it('/audit: the owner sees the whole organization, a member their own; filters and paging; odd filters are a 400 page', async () => {
      const { owner, member, org, memberId } = await team(
        'audit-owner@example.com',
        'audit-member@example.com',
      );
      const mine = await createKey(owner, 'owner key', `?org_id=${org.id}`);
      const theirs = await createKey(member, 'member key', `?org_id=${org.id}`, ['read', 'write']);

      const all = await owner.get(`/audit?org_id=${org.id}`);
      expect(all.statusCode).toBe(200);
      expect(all.body).toContain('<h1>Audit log</h1>');
      expect(all.body).toContain('aria-current="page">Audit log');
      expect(all.body).toContain(mine.id);
      expect(all.body).toContain(theirs.id);
      expect(all.body).toContain('every member’s actions');

      const own = await member.get(`/audit?org_id=${org.id}`);
      expect(own.statusCode).toBe(200);
      expect(own.body).toContain(theirs.id);
      expect(own.body).not.toContain(mine.id);

      // filters: by key, by actor, by action, by time
      const byKey = await owner.get(`/audit?org_id=${org.id}&key_id=${theirs.id}`);
      expect(byKey.body).toContain(theirs.id);
      expect(byKey.body).not.toContain(`/keys/${mine.id}`);
      const byActor = await owner.get(`/audit?org_id=${org.id}&actor_id=${memberId}`);
      expect(byActor.body).toContain(theirs.id);
      expect(byActor.body).not.toContain(`/keys/${mine.id}`);
      const byAction = await owner.get(`/audit?org_id=${org.id}&action=key.deleted`);
      expect(byAction.body).toContain('No events match this filter.');
      expect((await owner.get(`/audit?org_id=${org.id}&since=1h`)).body).toContain(mine.id);

      // bad filter values: said plainly, never a 5xx
      for (const q of ['action=nope', 'key_id=key_%00', 'since=yesterday', 'actor_id=%01', 'cursor=%ff']) {
        const res = await owner.get(`/audit?org_id=${org.id}&${q}`);
        expect(res.statusCode, q).toBeLessThan(500);
      }
      const bad = await owner.get(`/audit?org_id=${org.id}&since=yesterday`);
      expect(bad.statusCode).toBe(400);
      expect(bad.body).toContain('Pick a time range from the list');

      // paging: 50 a page, the next link leads to the rest
      for (let i = 0; i < 55; i++) {
        const res = await server.app.inject({
          method: 'PATCH',
          url: `/v1/api-keys/${mine.id}`,
          headers: { authorization: `Bearer ${mine.apiKey}` },
          payload: { name: `owner key ${i}` },
        });
        expect(res.statusCode).toBe(200);
      }
      const first = await owner.get(`/audit?org_id=${org.id}&action=key.updated`);
      expect(first.body.match(/<code>key\.updated<\/code>/g)?.length).toBe(50);
      const nextUrl =
        /href="(\/audit\?[^"]+)" rel="next"/.exec(first.body)?.[1]?.replaceAll('&amp;', '&') ?? '';
      expect(nextUrl).toContain('action=key.updated');
      const second = await owner.get(nextUrl);
      expect(second.body.match(/<code>key\.updated<\/code>/g)?.length).toBe(5);
      expect(second.body).toContain('Newest');
    });

    it('the owner manages webhooks (create, test ping with its delivery, delete), OIDC trusts and the leak policy; a member sees none of it', async () => {
      const { owner, member, org } = await team('hooks-owner@example.com', 'hooks-member@example.com');
      let page = await owner.get(`/orgs/${org.id}`);
      expect(page.body).toContain('id="h-webhooks"');
      expect(page.body).toContain('id="h-oidc"');
      expect(page.body).toContain('id="h-leaks"');
      const memberPage = await member.get(`/orgs/${org.id}`);
      expect(memberPage.statusCode).toBe(200);
      expect(memberPage.body).not.toContain('id="h-webhooks"');
      expect(memberPage.body).not.toContain('id="h-oidc"');
      expect(memberPage.body).not.toContain('id="h-leaks"');

      // webhook: create (every event), test ping reaches the receiver, the delivery log says so
      const hooks = `/orgs/${org.id}/webhooks`;
      page = await follow(
        owner,
        await owner.post(hooks, submission(page.body, hooks, { url: `${rx.url}/dash`, events: '*' })),
      );
      expect(page.body).toContain(`Webhook added: ${rx.url}/dash`);
      const ping = /action="(\/orgs\/[^"]+\/webhooks\/whk_[^"]+\/ping)"/.exec(page.body)?.[1] ?? '';
      expect(ping).not.toBe('');
      const before = rx.received.length;
      page = await follow(owner, await owner.post(ping, submission(page.body, ping)));
      expect(page.body).toContain('Test ping queued');
      await expect
        .poll(() => rx.received.slice(before).some((h) => JSON.parse(h.raw).type === 'ping'), {
          timeout: 10_000,
        })
        .toBe(true);
      await expect
        .poll(async () => (await owner.get(`/orgs/${org.id}`)).body, { timeout: 10_000 })
        .toMatch(/<code>ping<\/code><\/td><td><span class="status active">delivered/);
      // a member cannot ping or delete it (refused by the same rule as the API)
      const memberPing = await member.post(ping, {
        csrf: /name="csrf" value="([^"]+)"/.exec(memberPage.body)?.[1],
      });
      expect(memberPing.statusCode).toBe(303);
      expect((await member.get(String(memberPing.headers.location))).body).not.toContain('Test ping queued');
      // refused URL: a plain message, no webhook
      page = await owner.get(`/orgs/${org.id}`);
      const refused = await follow(
        owner,
        await owner.post(hooks, submission(page.body, hooks, { url: 'ftp://example.com/x', events: '*' })),
      );
      expect(refused.body).toContain('class="flash error"');
      const del = /action="(\/orgs\/[^"]+\/webhooks\/whk_[^"]+\/delete)"/.exec(refused.body)?.[1] ?? '';
      page = await follow(owner, await owner.post(del, submission(refused.body, del)));
      expect(page.body).toContain('Webhook deleted');
      expect(page.body).not.toContain(`${rx.url}/dash</strong>`);

      // OIDC trust: create from the form, listed, then deleted
      const trusts = `/orgs/${org.id}/oidc-trusts`;
      page = await follow(
        owner,
        await owner.post(
          trusts,
          submission(page.body, trusts, {
            issuer: 'https://token.actions.githubusercontent.com',
            claims: 'repository=acme/api\nref=refs/heads/main',
            ttl_s: '900',
            scopes: 'read',
          }),
        ),
      );
      expect(page.body).toContain('Trust added for https://token.actions.githubusercontent.com');
      expect(page.body).toContain('repository = acme/api, ref = refs/heads/main');
      const api = await owner.get(`/v1/orgs/${org.id}/oidc-trusts`);
      if (api.statusCode === 200) expect(api.json().data).toHaveLength(1);
      // a claim of only "*" is refused with the service's reason
      const wild = await follow(
        owner,
        await owner.post(
          trusts,
          submission(page.body, trusts, {
            issuer: 'https://token.actions.githubusercontent.com',
            claims: 'repository=*',
            ttl_s: '900',
            scopes: 'read',
          }),
        ),
      );
      expect(wild.body).toContain('At least one claim needs a concrete value');
      const delTrust = /action="(\/orgs\/[^"]+\/oidc-trusts\/oidc_[^"]+\/delete)"/.exec(wild.body)?.[1] ?? '';
      page = await follow(owner, await owner.post(delTrust, submission(wild.body, delTrust)));
      expect(page.body).toContain('deleted: its jobs get no more keys');
      expect((await server.store.oidc.listTrusts(org.id)).length).toBe(0);

      // leak policy
      const leak = `/orgs/${org.id}/leak-policy`;
      page = await follow(
        owner,
        await owner.post(leak, submission(page.body, leak, { leak_policy: 'notify' })),
      );
      expect(page.body).toContain('now keeps working');
      expect((await server.store.orgs.get(org.id))?.leak_policy).toBe('notify');
      expect(page.body).toMatch(/value="notify" checked/);

      // every one of those writes is in the audit log, by the owner
      const log = await owner.get(`/audit?org_id=${org.id}`);
      for (const action of ['webhook.created', 'webhook.deleted', 'oidc_trust.created']) {
        expect(log.body, action).toContain(`<code>${action}</code>`);
      }
    });
  });
}
