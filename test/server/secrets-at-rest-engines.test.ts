/**
 * "Nothing leaks" on both engines: after keys are created and rotated, an email code is redeemed
 * for a key and for a JWT, and a browser signs in, no plaintext key, code, JWT or session token is
 * in any row of the database (every table, read back as text) or in the server's log lines.
 * (secrets-at-rest.test.ts also searches the SQLite files and WAL byte for byte.)
 */
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { loggerOptions } from '../../src/server/logging.js';
import { InjectBrowser, latestOutboxCode } from '../helpers/browser.js';
import { testEngines } from '../helpers/engines.js';

const eng = testEngines();
afterAll(() => eng.stop());

/** Every table of the store as one text (rows as JSON), on either engine. */
async function everyRow(db: import('kysely').Kysely<unknown>, engine: string): Promise<string> {
  const tables =
    engine === 'postgres'
      ? (
          await sql<{ name: string }>`select table_name as name from information_schema.tables
            where table_schema = 'public' and table_type = 'BASE TABLE'`.execute(db)
        ).rows
      : (await sql<{ name: string }>`select name from sqlite_master where type = 'table'`.execute(db)).rows;
  expect(tables.length).toBeGreaterThan(5);
  let text = '';
  for (const { name } of tables) {
    const rows = (await sql`select * from ${sql.table(name)}`.execute(db)).rows;
    text += `${name}: ${JSON.stringify(rows)}\n`;
  }
  return text;
}

for (const e of eng.list) {
  describe.skipIf(e.skip)(e.name, () => {
    it('no plaintext key, code, JWT or session token in any table or log line', async () => {
      const logs: string[] = [];
      const sink = new Writable({
        write(chunk, _enc, cb) {
          logs.push(String(chunk));
          cb();
        },
      });
      const s = await e.startServer({ logger: { ...loggerOptions('debug'), stream: sink } });
      try {
        const { apiKey: admin } = await s.seedKey({ email: 'leak@example.com' });
        const secrets: string[] = [admin];
        for (let i = 0; i < 5; i++) {
          const res = await s.app.inject({
            method: 'POST',
            url: '/v1/api-keys',
            headers: { 'xi-api-key': admin },
            payload: { name: `k${i}` },
          });
          expect(res.statusCode).toBe(201);
          secrets.push(res.json().api_key);
          const rotated = await s.app.inject({
            method: 'POST',
            url: `/v1/api-keys/${res.json().key_id}/rotate`,
            headers: { 'xi-api-key': admin },
            payload: {},
          });
          expect(rotated.statusCode).toBe(201);
          secrets.push(rotated.json().api_key);
        }
        const outbox = join(s.dataDir, 'outbox');
        for (const type of ['api_key', 'jwt'] as const) {
          const before = latestOutboxCode(outbox, 'leak@example.com');
          const start = await s.app.inject({
            method: 'POST',
            url: '/auth/code',
            payload: { email: 'leak@example.com', type },
          });
          expect(start.statusCode).toBe(201);
          await expect.poll(() => latestOutboxCode(outbox, 'leak@example.com')).not.toBe(before);
          const code = latestOutboxCode(outbox, 'leak@example.com') ?? '';
          secrets.push(code);
          const done = await s.app.inject({
            method: 'POST',
            url: `/auth/code/${start.json().id}/verifications`,
            payload: { code },
          });
          expect(done.statusCode).toBe(200);
          secrets.push(type === 'jwt' ? done.json().token : done.json().secret);
        }
        const b = new InjectBrowser(s.app);
        await b.signIn('leak@example.com', () => latestOutboxCode(outbox, 'leak@example.com'));
        const session = b.cookies.get('breeze_session') ?? '';
        expect(session.length).toBeGreaterThan(20);
        secrets.push(session, latestOutboxCode(outbox, 'leak@example.com') ?? '');

        const rows = await everyRow(s.store.db as never, e.name);
        const log = logs.join('');
        expect(log.length).toBeGreaterThan(1000);
        for (const secret of secrets) {
          // keys: also their unshown tail (the 12-character prefix is public)
          const needles = secret.startsWith('brz_') ? [secret, secret.slice(12)] : [secret];
          for (const needle of needles) {
            expect(rows.includes(needle), `a secret in the ${e.name} database`).toBe(false);
            expect(log.includes(needle), 'a secret in the log').toBe(false);
          }
        }
        // sanity: the scan reads real rows (public prefixes and emails are stored)
        expect(rows).toContain(admin.slice(0, 12));
        expect(rows).toContain('leak@example.com');
      } finally {
        await s.close();
      }
    });
  });
}
