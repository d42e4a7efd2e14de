import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import { loggerOptions } from '../../src/server/logging.js';
import { OutboxMailer } from '../../src/server/mail/outbox.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
const logs: string[] = [];

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  s = await startTestServer({ logger: { ...loggerOptions('debug'), stream: sink } });
});
afterAll(() => s.close());

/** Every secret-looking piece of a key: the whole key and its unshown tail (the 12-char prefix is public). */
function needles(apiKey: string): string[] {
  return [apiKey, apiKey.slice(12), apiKey.slice(12, 32)];
}

it('stores no plaintext key in the SQLite database or its WAL, and logs none', async () => {
  const { apiKey: admin } = await s.seedKey();
  const secrets: string[] = [admin];
  for (let i = 0; i < 20; i++) {
    const res = await s.app.inject({
      method: 'POST',
      url: '/v1/api-keys',
      headers: { 'xi-api-key': admin },
      payload: { name: `k${i}`, scopes: ['read', 'write'] },
    });
    expect(res.statusCode).toBe(201);
    const created = res.json();
    secrets.push(created.api_key);
    if (i % 5 === 0) {
      const rotated = await s.app.inject({
        method: 'POST',
        url: `/v1/api-keys/${created.key_id}/rotate`,
        headers: { authorization: `Bearer ${created.api_key}`, cookie: `breeze_session=${created.api_key}` },
        payload: { grace_period_s: 0 },
      });
      secrets.push(rotated.json().api_key);
    }
  }
  // a failed request with a key in headers and body must not be logged either
  await s.app.inject({
    method: 'POST',
    url: '/v1/api-keys?api_key=x',
    headers: { 'xi-api-key': admin },
    payload: { name: 7, api_key: admin },
  });

  const files = readdirSync(s.dataDir).filter((f) => f.startsWith('breeze.db'));
  expect(files).toContain('breeze.db');
  expect(files).toContain('breeze.db-wal');
  const bytes = files.map((f) => readFileSync(join(s.dataDir, f)));
  const log = Buffer.from(logs.join(''));
  expect(log.length).toBeGreaterThan(1000); // the logger did write request lines
  for (const secret of secrets) {
    for (const needle of needles(secret)) {
      for (const b of bytes) expect(b.includes(needle)).toBe(false);
      expect(log.includes(needle)).toBe(false);
    }
  }
  // sanity: the scan can find things: the public prefix is stored
  expect(bytes.some((b) => b.includes(secrets[1]!.slice(0, 12)))).toBe(true);
});

it('drops a revoked key on another server sharing the database within one second', async () => {
  // two servers on one SQLite file: the CLI's embedded one and `breeze serve`
  const other = await buildApp({
    store: s.store,
    mailer: new OutboxMailer(join(s.dataDir, 'outbox')),
    config: { pepper: Buffer.from('test-pepper') },
  });
  const { apiKey, keyId } = await s.seedKey({ email: 'shared@example.com' });
  const me = () => other.inject({ method: 'GET', url: '/v1/me', headers: { 'xi-api-key': apiKey } });
  expect((await me()).statusCode).toBe(200); // cached on `other` now
  // disable it behind `other`'s back, straight in the shared database
  await s.store.keys.update(keyId, { disabled_at: new Date().toISOString() });
  const start = Date.now();
  let status = 200;
  while (status === 200 && Date.now() - start < 3000) {
    status = (await me()).statusCode;
    if (status === 200) await new Promise((r) => setTimeout(r, 20));
  }
  expect(status).toBe(401);
  expect(Date.now() - start).toBeLessThan(1000);
  await other.close();
});

it('writes last_used_at at most once a minute per key', async () => {
  let now = Date.parse('2026-11-22T10:00:00Z');
  const app = await buildApp({
    store: s.store,
    mailer: new OutboxMailer(join(s.dataDir, 'outbox')),
    clock: () => new Date(now),
    config: { pepper: Buffer.from('test-pepper'), rateLimitPerKey: 0 },
  });
  const { apiKey, keyId } = await s.seedKey({ email: 'touch@example.com' });
  const original = s.store.keys.touch.bind(s.store.keys);
  let writes = 0;
  s.store.keys.touch = async (id, at) => {
    writes++;
    return original(id, at);
  };
  try {
    for (let i = 0; i < 50; i++) {
      now += 500;
      await app.inject({ method: 'GET', url: '/v1/me', headers: { 'xi-api-key': apiKey } });
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(writes).toBe(1);
    const first = (await s.store.keys.get(keyId))!.last_used_at;
    expect(first).toBe(new Date(Date.parse('2026-11-22T10:00:00Z') + 500).toISOString());
    now += 61_000;
    await app.inject({ method: 'GET', url: '/v1/me', headers: { 'xi-api-key': apiKey } });
    await new Promise((r) => setTimeout(r, 50));
    expect(writes).toBe(2);
    expect((await s.store.keys.get(keyId))!.last_used_at).toBe(new Date(now).toISOString());
  } finally {
    s.store.keys.touch = original;
    await app.close();
  }
});
