import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/server/config.js';
import { startServer } from '../../src/server/serve.js';
import { runCli, tempConfigDir } from '../helpers/cli.js';
import { testEngines } from '../helpers/engines.js';

/**
 * Issue 14: audit retention. The background pruner deletes events older than the retention (in
 * batches) and keeps the rest, on SQLite and PostgreSQL; it is stopped when the server closes.
 */

const eng = testEngines();
afterAll(() => eng.stop());
const DAY = 86400_000;

for (const e of eng.list) {
  describe.skipIf(e.skip)(`audit retention (${e.name})`, () => {
    it('the background pruner deletes events past the retention and keeps younger ones', async () => {
      const real = Date.now();
      let now = real - 400 * DAY;
      const s = await e.startServer({
        clock: () => new Date(now),
        config: { auditRetentionDays: 365, rateLimitPerKey: 0 },
        auditPruner: { firstMs: 50, everyMs: 50 },
      });
      try {
        const old = await s.seedKey({ email: 'old@example.com' });
        for (let i = 0; i < 4; i++) {
          const res = await s.app.inject({
            method: 'POST',
            url: '/v1/api-keys',
            headers: { 'xi-api-key': old.apiKey },
            payload: { name: `old ${i}` },
          });
          expect(res.statusCode).toBe(201);
        }
        now = real - 300 * DAY;
        await s.seedKey({ email: 'young@example.com' });
        const count = async (where: 'old' | 'young') =>
          (
            await s.store.db
              .selectFrom('audit_events')
              .select('id')
              .where('at', where === 'old' ? '<' : '>=', new Date(real - 365 * DAY).toISOString())
              .execute()
          ).length;
        // the pruner has run meanwhile with the clock 400 and 300 days back: nothing was old enough
        await new Promise((r) => setTimeout(r, 150));
        expect(await count('old')).toBe(5);
        expect(await count('young')).toBe(1);
        now = real;
        const until = Date.now() + 5000;
        while ((await count('old')) > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
        expect(await count('old')).toBe(0);
        expect(await count('young')).toBe(1);
      } finally {
        await s.close();
      }
    });

    it('prunes in batches until nothing old is left; retention 0 keeps everything', async () => {
      const real = Date.now();
      let now = real - 30 * DAY;
      const s = await e.startServer({
        clock: () => new Date(now),
        config: { auditRetentionDays: 0 },
        auditPruner: { firstMs: 10, everyMs: 10 },
      });
      try {
        for (let i = 0; i < 7; i++) await s.seedKey({ email: `b${i}@example.com` });
        now = real;
        await s.seedKey({ email: 'fresh@example.com' });
        const total = async () => (await s.store.db.selectFrom('audit_events').select('id').execute()).length;
        // retention 0: no background pruning at all
        await new Promise((r) => setTimeout(r, 100));
        expect(await total()).toBe(8);
        // 7 old events in batches of 2: four batches, the last one short
        expect(await s.app.breeze.audit.prune(7, 2)).toBe(7);
        expect(await total()).toBe(1);
        expect(await s.app.breeze.audit.prune(7, 2)).toBe(0);
      } finally {
        await s.close();
      }
    });
  });
}

describe('the default retention', () => {
  it('breeze serve (startServer) and the app keep events 365 days unless told otherwise', async () => {
    expect(defaultConfig().auditRetentionDays).toBe(365);
    const dataDir = mkdtempSync(join(tmpdir(), 'breeze-retention-'));
    const s = await startServer({ host: '127.0.0.1', port: 0, dataDir, logger: false });
    try {
      expect(s.app.breeze.config.auditRetentionDays).toBe(365);
    } finally {
      await s.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('the --audit-retention-days flag of breeze serve defaults to 365', async () => {
    const t = tempConfigDir();
    try {
      const r = await runCli(['serve', '--help'], { configDir: t.dir });
      expect(r.code).toBe(0);
      expect(r.stdout.replace(/\s+/g, ' ')).toMatch(/--audit-retention-days <n>.*\(default: 365/);
    } finally {
      t.cleanup();
    }
  });
});
