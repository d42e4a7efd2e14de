import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { verifyWebhook } from '../../packages/verify/src/webhook.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * The README's receiver (docs/webhooks.md), with `verifyWebhook` of the @breeze/verify package in
 * this repository, against a real server: a key.created delivery is accepted, a tampered one is
 * refused.
 */

let s: TestServer;
let receiver: Server;
let receiverUrl = '';
const accepted: { type: string; target: string }[] = [];
let refused = 0;
/** what the receivers of `/org/<org id>` (checking `orgId`) decided */
const byOrg: { path: string; org: unknown; code: string }[] = [];

beforeAll(async () => {
  s = await startTestServer({
    config: { allowPrivateWebhooks: true, webhooks: { pollMs: 50, retryBaseMs: 60_000, expiryScanMs: 0 } },
  });
  const base = await s.app.listen({ host: '127.0.0.1', port: 0 });
  const jwksUrl = `${base}/.well-known/jwks.json`;
  // the README's receiver, line for line (plus a record of what it decided)
  receiver = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const header = req.headers['breeze-signature'] as string | undefined;
    if (req.url?.startsWith('/org/')) {
      const orgId = req.url.slice('/org/'.length);
      const body = Buffer.concat(chunks);
      const r = await verifyWebhook(body, header, { jwksUrl, orgId }).then(
        () => 'accepted',
        (err: { code?: string }) => err.code ?? 'error',
      );
      byOrg.push({ path: req.url, org: JSON.parse(body.toString()).data.org_id, code: r });
      return void res.writeHead(r === 'accepted' ? 204 : 400).end();
    }
    const tamper = req.url === '/tampered';
    const body = Buffer.concat(chunks);
    const event = await verifyWebhook(tamper ? Buffer.concat([body, Buffer.from(' ')]) : body, header, {
      jwksUrl,
    }).catch(() => null);
    if (event)
      accepted.push({ type: event.type, target: (event.data as { target: { id: string } }).target.id });
    else refused++;
    res.writeHead(event ? 204 : 400).end();
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await s?.close();
  if (receiver) await new Promise((r) => receiver.close(r));
});

test('the README receiver accepts a real delivery and refuses a tampered one', async () => {
  const seeded = await s.seedKey({ email: `sdk-${randomBytes(4).toString('hex')}@example.com` });
  const headers = { 'xi-api-key': seeded.apiKey };
  const me = (await s.app.inject({ method: 'GET', url: '/v1/me', headers })).json() as {
    org: { id: string };
  };
  for (const path of ['/ok', '/tampered']) {
    const r = await s.app.inject({
      method: 'POST',
      url: `/v1/orgs/${me.org.id}/webhooks`,
      headers,
      payload: { url: `${receiverUrl}${path}`, events: ['key.created'] },
    });
    expect(r.statusCode).toBe(201);
  }
  const key = (
    await s.app.inject({ method: 'POST', url: '/v1/api-keys', headers, payload: { name: 'sdk' } })
  ).json() as { key_id: string };
  const end = Date.now() + 10_000;
  while ((accepted.length < 1 || refused < 1) && Date.now() < end)
    await new Promise((r) => setTimeout(r, 25));
  expect(accepted).toEqual([{ type: 'key.created', target: key.key_id }]);
  expect(refused).toBe(1);
});

test("with orgId, a receiver refuses another organization's genuinely signed deliveries", async () => {
  // org B's admin points a webhook at org A's receiver: Breeze signs B's events with the same key
  const org = async () => {
    const seeded = await s.seedKey({ email: `sdk-${randomBytes(4).toString('hex')}@example.com` });
    const headers = { 'xi-api-key': seeded.apiKey };
    const me = (await s.app.inject({ method: 'GET', url: '/v1/me', headers })).json() as {
      org: { id: string };
    };
    return { id: me.org.id, headers };
  };
  const a = await org();
  const b = await org();
  const target = `${receiverUrl}/org/${a.id}`;
  for (const o of [a, b]) {
    const r = await s.app.inject({
      method: 'POST',
      url: `/v1/orgs/${o.id}/webhooks`,
      headers: o.headers,
      payload: { url: target, events: ['key.created'] },
    });
    expect(r.statusCode).toBe(201);
  }
  for (const o of [a, b])
    await s.app.inject({ method: 'POST', url: '/v1/api-keys', headers: o.headers, payload: { name: 'x' } });
  const end = Date.now() + 10_000;
  while (byOrg.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
  expect(byOrg.sort((x, y) => (x.code < y.code ? -1 : 1))).toEqual([
    { path: `/org/${a.id}`, org: b.id, code: 'WRONG_ORG' },
    { path: `/org/${a.id}`, org: a.id, code: 'accepted' },
  ]);
});
