import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../src/core/api-key.js';
import { testEngines } from '../helpers/engines.js';
import type { TestServer } from '../helpers/server.js';

/**
 * PLATFORM.md: "The same conventions hold" as API.md, whose first one is "Unknown JSON fields are
 * ignored". Every PLATFORM.md route with a JSON body takes a body with an extra field exactly as
 * it takes the body without it (black-box over HTTP, on both engines): no 400 for the extra field.
 */

const eng = testEngines();
afterAll(() => eng.stop());

type Json = Record<string, unknown>;
const EXTRA = { extra_field: 1, another: { nested: true } };

for (const e of eng.list) {
  describe.skipIf(e.skip)(`unknown JSON fields are ignored on PLATFORM.md routes (${e.name})`, () => {
    let s: TestServer;
    beforeAll(async () => {
      s = await e.startServer({ config: { allowPrivateWebhooks: true } });
    });
    afterAll(() => s?.close());

    async function call(key: string | undefined, method: string, url: string, payload?: object) {
      const res = await s.app.inject({
        method: method as 'POST',
        url,
        headers: key ? { 'xi-api-key': key } : {},
        ...(payload ? { payload } : {}),
      });
      return { status: res.statusCode, body: (res.body ? res.json() : {}) as Json };
    }

    it('answers each body with an extra field as it answers the body without it', async () => {
      const owner = await s.seedKey({ email: `conv-owner-${e.name}@example.com` });
      const me = await call(owner.apiKey, 'GET', '/v1/me');
      const userId = (me.body.user as Json).id as string;

      const org = await call(owner.apiKey, 'POST', '/v1/orgs', { name: 'Conventions', ...EXTRA });
      expect(org.status, JSON.stringify(org.body)).toBe(201);
      const orgId = org.body.id as string;

      const project = await call(owner.apiKey, 'POST', `/v1/orgs/${orgId}/projects`, {
        name: 'api',
        ...EXTRA,
      });
      expect(project.status, JSON.stringify(project.body)).toBe(201);

      const invitation = await call(owner.apiKey, 'POST', `/v1/orgs/${orgId}/invitations`, {
        email: `conv-invitee-${e.name}@example.com`,
        role: 'member',
        ...EXTRA,
      });
      expect(invitation.status, JSON.stringify(invitation.body)).toBe(201);

      // a wrong code: the documented 404, not a 400 for the extra field
      const invitee = await s.seedKey({ email: `conv-invitee-${e.name}@example.com` });
      const accept = await call(invitee.apiKey, 'POST', `/v1/invitations/${invitation.body.id}/accept`, {
        code: 'AAAAAAAA',
        ...EXTRA,
      });
      expect(accept.status, JSON.stringify(accept.body)).toBe(404);

      const role = await call(owner.apiKey, 'PATCH', `/v1/orgs/${orgId}/members/${userId}`, {
        role: 'owner',
        ...EXTRA,
      });
      expect(role.status, JSON.stringify(role.body)).toBe(200);

      const hook = await call(owner.apiKey, 'POST', `/v1/orgs/${orgId}/webhooks`, {
        url: 'http://127.0.0.1:9/hook',
        events: ['key.created'],
        ...EXTRA,
      });
      expect(hook.status, JSON.stringify(hook.body)).toBe(201);
      const deliveries = await call(owner.apiKey, 'GET', `/v1/webhooks/${hook.body.id}/deliveries?foo=bar`);
      expect(deliveries.status, JSON.stringify(deliveries.body)).toBe(200);

      const trust = await call(owner.apiKey, 'POST', `/v1/orgs/${orgId}/oidc-trusts`, {
        issuer: 'https://token.actions.githubusercontent.com',
        audience: 'breeze',
        claims: { repository: 'acme/api' },
        ttl_s: 600,
        ...EXTRA,
      });
      expect(trust.status, JSON.stringify(trust.body)).toBe(201);

      // a token that fails its checks: the documented 401, not a 400 for the extra field
      const exchange = await call(undefined, 'POST', '/v1/oidc/exchange', { token: 'a.b.c', ...EXTRA });
      expect(exchange.status, JSON.stringify(exchange.body)).toBe(401);
      expect((exchange.body.error as Json).code).toBe('AUTH_REQUIRED');
      // "Failures answer 401 AUTH_REQUIRED without saying which check failed": a token that is not
      // a JWT at all too (only a missing or empty one is a 400)
      for (const token of ['not-a-jwt', 'a.b', 'x\u0000y', 'é.é.é']) {
        const r = await call(undefined, 'POST', '/v1/oidc/exchange', { token });
        expect(r.status, token).toBe(401);
        expect((r.body.error as Json).code).toBe('AUTH_REQUIRED');
      }

      const settings = await call(owner.apiKey, 'PATCH', `/v1/orgs/${orgId}`, {
        leak_policy: 'notify',
        ...EXTRA,
      });
      expect(settings.status, JSON.stringify(settings.body)).toBe(200);

      const leak = await call(undefined, 'POST', '/v1/keys/leaks', { key: generateApiKey(), ...EXTRA });
      expect(leak.status, JSON.stringify(leak.body)).toBe(202);
      expect(leak.body).toEqual({ received: true });
    });

    it("the specs' own query strings, every parameter empty, are the parameters not given (200, not 400)", async () => {
      const owner = await s.seedKey({ email: `conv-query-${e.name}@example.com` });
      const me = await call(owner.apiKey, 'GET', '/v1/me');
      const keyId = (me.body.auth as Json).key_id as string;
      const org = (me.body.org as Json).id as string;
      const hook = await call(owner.apiKey, 'POST', `/v1/orgs/${org}/webhooks`, {
        url: 'http://127.0.0.1:9/hook',
        events: ['key.created'],
      });
      expect(hook.status, JSON.stringify(hook.body)).toBe(201);
      for (const url of [
        '/v1/audit-events?org_id=&action=&key_id=&actor_id=&since=&limit=&cursor=',
        `/v1/api-keys/${keyId}/usage?from=&to=&granularity=`,
        `/v1/webhooks/${hook.body.id}/deliveries?limit=`,
        '/v1/api-keys?limit=&cursor=&status=',
      ]) {
        const r = await call(owner.apiKey, 'GET', url);
        expect(r.status, `${url}: ${JSON.stringify(r.body)}`).toBe(200);
        expect(Array.isArray(r.body.data), url).toBe(true);
      }
      // a parameter given is still checked
      const bad = await call(owner.apiKey, 'GET', '/v1/audit-events?limit=0');
      expect(bad.status).toBe(400);
      expect((bad.body.error as Json).code).toBe('VALIDATION_FAILED');
    });

    it('still refuses what is wrong in such a body with 400 VALIDATION_FAILED', async () => {
      const owner = await s.seedKey({ email: `conv-bad-${e.name}@example.com` });
      for (const [url, payload] of [
        ['/v1/orgs', { extra_field: 1 }],
        ['/v1/orgs', { name: 42, extra_field: 1 }],
        ['/v1/keys/leaks', { key: 'brz_nope', extra_field: 1 }],
      ] as const) {
        const r = await call(owner.apiKey, 'POST', url, payload);
        expect(r.status, `${url} ${JSON.stringify(payload)}`).toBe(400);
        expect((r.body.error as Json).code).toBe('VALIDATION_FAILED');
      }
    });
  });
}
