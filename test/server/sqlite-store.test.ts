import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { openStore } from '../../src/server/store/index.js';
import { MIGRATION_NAMES } from '../../src/server/store/migrations.js';

const run = promisify(execFile);

it('several processes opening a fresh data dir at once all succeed and migrate it once', async () => {
  for (let round = 0; round < 3; round++) {
    const dir = mkdtempSync(join(tmpdir(), 'breeze-sqlite-race-'));
    try {
      const script = `
        const { openStore } = await import(${JSON.stringify(join(process.cwd(), 'dist/server/store/index.js'))});
        const store = await openStore({ dataDir: process.argv[1] });
        await store.users.ensure('race@example.com');
        await store.close();
      `;
      const procs = Array.from({ length: 6 }, () =>
        run(process.execPath, ['--input-type=module', '-e', script, dir], { timeout: 30_000 }),
      );
      const results = await Promise.allSettled(procs);
      const failures = results
        .filter((r) => r.status === 'rejected')
        .map((r) => String((r as PromiseRejectedResult).reason));
      expect(failures).toEqual([]);
      const store = await openStore({ dataDir: dir });
      const applied = await store.db
        .selectFrom('kysely_migration' as never)
        .select('name' as never)
        .execute();
      // each migration recorded exactly once (was a literal 1, stale since 002_api_keys_rotated_at)
      expect(applied).toHaveLength(MIGRATION_NAMES.length);
      expect(await store.users.findByEmail('race@example.com')).toBeDefined();
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}, 120_000);
