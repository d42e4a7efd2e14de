import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Scope } from '../../src/core/types.js';
import { type BuildAppOptions, buildApp } from '../../src/server/app.js';
import type { ServerConfig } from '../../src/server/config.js';
import type { KeyService } from '../../src/server/key-service.js';
import { OutboxMailer } from '../../src/server/mail/outbox.js';
import { openStore, type Store } from '../../src/server/store/index.js';

export interface TestServer {
  app: FastifyInstance;
  store: Store;
  dataDir: string;
  /** creates a user (if needed) and a key for it; returns the plaintext */
  seedKey(opts?: SeedKeyOptions): Promise<{
    apiKey: string;
    keyId: string;
    userId: string;
  }>;
  close(): Promise<void>;
}

export interface SeedKeyOptions {
  email?: string;
  scopes?: Scope[];
  name?: string;
  expiresAt?: string | null;
  /** how the key was made (API.md `created_via`); default `api` */
  createdVia?: 'api' | 'cli_login' | 'email_code';
}

/** Creates the user (if needed) and an admin-capable key for it, as a first login would; returns the plaintext. */
export async function mintSeedKey(
  store: Store,
  keys: KeyService,
  o: SeedKeyOptions = {},
): Promise<{ apiKey: string; keyId: string; userId: string }> {
  const user = await store.users.ensure(o.email ?? 'dev@example.com');
  const { row, apiKey } = await keys.mint({
    userId: user.id,
    name: o.name ?? 'seed',
    scopes: o.scopes ?? ['read', 'write', 'admin'],
    expiresAt: o.expiresAt ?? null,
    createdVia: o.createdVia ?? 'api',
  });
  return { apiKey, keyId: row.id, userId: user.id };
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
    seedKey: (o = {}) => mintSeedKey(store, app.breeze.keys, o),
    async close() {
      await app.close();
      if (!opts.store) await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
