import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Scope } from '../../src/core/types.js';
import { type BuildAppOptions, buildApp } from '../../src/server/app.js';
import type { ServerConfig } from '../../src/server/config.js';
import { OutboxMailer } from '../../src/server/mail/outbox.js';
import { openStore, type Store } from '../../src/server/store/index.js';

export interface TestServer {
  app: FastifyInstance;
  store: Store;
  dataDir: string;
  /** creates a user (if needed) and a key for it; returns the plaintext */
  seedKey(opts?: { email?: string; scopes?: Scope[]; name?: string; expiresAt?: string | null }): Promise<{
    apiKey: string;
    keyId: string;
    userId: string;
  }>;
  close(): Promise<void>;
}

/** A real server over a real SQLite file in a temp dir (or `store` if given). */
export async function startTestServer(
  opts: { config?: Partial<ServerConfig>; store?: Store; clock?: () => Date } & Partial<BuildAppOptions> = {},
): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'breeze-test-'));
  const store = opts.store ?? (await openStore({ dataDir }));
  const app = await buildApp({
    ...opts,
    store,
    mailer: opts.mailer ?? new OutboxMailer(join(dataDir, 'outbox')),
    config: { pepper: Buffer.from('test-pepper'), ...opts.config },
  });
  await app.ready();
  return {
    app,
    store,
    dataDir,
    async seedKey(o = {}) {
      const user = await store.users.ensure(o.email ?? 'dev@example.com');
      const { row, apiKey } = await app.breeze.keys.mint({
        userId: user.id,
        name: o.name ?? 'seed',
        scopes: o.scopes ?? ['read', 'write', 'admin'],
        expiresAt: o.expiresAt ?? null,
        createdVia: 'api',
      });
      return { apiKey, keyId: row.id, userId: user.id };
    },
    async close() {
      await app.close();
      if (!opts.store) await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
