#!/usr/bin/env node
// Webhook figures (after `npm run build`): `node bench/webhooks.mjs [rounds]`.
//  1. key creation (POST /v1/api-keys, in-process) with no webhook vs with a "*" webhook of the
//     key's organization (the audit sink enqueues a delivery in the same transaction), interleaved;
//  2. latency from POST /v1/webhooks/:id/test to the receiver having the body (loopback receiver).
// SQLite in a temp dir. Prints medians and ranges.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../dist/server/app.js';
import { OutboxMailer } from '../dist/server/mail/outbox.js';
import { openStore } from '../dist/server/store/index.js';

const rounds = Number(process.argv[2] ?? 200);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const range = (xs) => `${Math.min(...xs).toFixed(2)}..${Math.max(...xs).toFixed(2)}`;

let received = 0;
let onReceive = () => {};
const rx = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    received++;
    onReceive();
    res.end();
  });
});
await new Promise((r) => rx.listen(0, '127.0.0.1', r));
const rxUrl = `http://127.0.0.1:${rx.address().port}`;

async function server() {
  const dir = mkdtempSync(join(tmpdir(), 'breeze-bench-wh-'));
  const store = await openStore({ dataDir: dir });
  const app = await buildApp({
    store,
    mailer: new OutboxMailer(join(dir, 'outbox')),
    config: { pepper: Buffer.from('bench'), rateLimitPerKey: 0, allowPrivateWebhooks: true },
  });
  await app.ready();
  const user = await store.users.ensure(`bench-${Date.now()}@example.com`);
  const { apiKey } = await app.breeze.keys.mint({
    userId: user.id,
    name: 'bench',
    scopes: ['read', 'write', 'admin'],
    expiresAt: null,
    createdVia: 'api',
  });
  const headers = { 'xi-api-key': apiKey };
  const me = (await app.inject({ method: 'GET', url: '/v1/me', headers })).json();
  return {
    app,
    headers,
    orgId: me.org.id,
    async close() {
      await app.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const plain = await server();
const hooked = await server();
await hooked.app.inject({
  method: 'POST',
  url: `/v1/orgs/${hooked.orgId}/webhooks`,
  headers: hooked.headers,
  payload: { url: rxUrl, events: ['*'] },
});

async function createKey(s) {
  const t = performance.now();
  const r = await s.app.inject({
    method: 'POST',
    url: '/v1/api-keys',
    headers: s.headers,
    payload: { name: 'k' },
  });
  if (r.statusCode !== 201) throw new Error(`create: ${r.statusCode}`);
  return performance.now() - t;
}

for (let i = 0; i < 20; i++) {
  await createKey(plain);
  await createKey(hooked);
}
const a = [];
const b = [];
for (let i = 0; i < rounds; i++) {
  a.push(await createKey(plain));
  b.push(await createKey(hooked));
}
console.log(`key creation, no webhook:   median ${median(a).toFixed(2)} ms (${range(a)}), n=${rounds}`);
console.log(`key creation, "*" webhook:  median ${median(b).toFixed(2)} ms (${range(b)}), n=${rounds}`);
console.log(`  ratio of medians ${(median(b) / median(a)).toFixed(3)}`);

// let the deliveries of the creations above go out first
const want = rounds + 20 + 1;
const until = Date.now() + 60_000;
while (received < want && Date.now() < until) await new Promise((r) => setTimeout(r, 50));

const hook = (
  await hooked.app.inject({
    method: 'GET',
    url: `/v1/orgs/${hooked.orgId}/webhooks`,
    headers: hooked.headers,
  })
).json().data[0];
const lat = [];
for (let i = 0; i < 50; i++) {
  const got = new Promise((r) => {
    onReceive = r;
  });
  const t = performance.now();
  await hooked.app.inject({ method: 'POST', url: `/v1/webhooks/${hook.id}/test`, headers: hooked.headers });
  await got;
  lat.push(performance.now() - t);
}
console.log(`ping -> receiver: median ${median(lat).toFixed(2)} ms (${range(lat)}), n=50`);

await plain.close();
await hooked.close();
rx.close();
