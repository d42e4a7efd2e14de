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
