import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './paths.js';

/**
 * The bench measures the built product (dist/, what `npm run build` made), never a second
 * compilation of src/. dist/ has no type declarations, so the few entry points used here are typed
 * by hand, narrowly: only what the bench calls. Pulling src/ into the bench's program instead would
 * make the bench fail to compile whenever any file of src/ is mid-edit.
 */

export interface KeyRowLike {
  id: string;
}

export interface StoreLike {
  readonly engine: 'sqlite' | 'postgres';
  readonly users: { ensure(email: string): Promise<{ id: string }> };
  transaction<T>(fn: (tx: unknown) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface AppLike {
  breeze: {
    keys: {
      mint(
        opts: {
          userId: string;
          name: string;
          scopes: string[];
          expiresAt: string | null;
          createdVia: string;
        },
        tx?: unknown,
      ): Promise<{ row: KeyRowLike; apiKey: string }>;
    };
  };
  ready(): Promise<unknown>;
  close(): Promise<void>;
}

interface AppModule {
  buildApp(opts: { store: StoreLike; mailer: unknown; config?: Record<string, unknown> }): Promise<AppLike>;
}
interface StoreModule {
  openStore(loc: { dataDir?: string; databaseUrl?: string }): Promise<StoreLike>;
  SQLITE_FILE: string;
}
interface ConfigModule {
  resolvePepper(dataDir: string | undefined, env?: NodeJS.ProcessEnv): Buffer | null;
  defaultConfig(): { keyCacheTtlMs: number };
}
interface OutboxModule {
  OutboxMailer: new (dir: string) => unknown;
}
interface ApiKeyModule {
  generateApiKey(): string;
}
interface IdsModule {
  newKeyId(now?: number): string;
}

export interface Dist {
  app: AppModule;
  store: StoreModule;
  config: ConfigModule;
  outbox: OutboxModule;
  apiKey: ApiKeyModule;
  ids: IdsModule;
}

export const DIST = join(ROOT, 'dist');

async function load<T>(rel: string): Promise<T> {
  const file = join(DIST, rel);
  if (!existsSync(file)) throw new Error(`${file} is missing: run "npm run build" first`);
  return (await import(pathToFileURL(file).href)) as T;
}

/** Loads the built server and core modules the bench drives directly. */
export async function loadDist(): Promise<Dist> {
  const [app, store, config, outbox, apiKey, ids] = await Promise.all([
    load<AppModule>('server/app.js'),
    load<StoreModule>('server/store/index.js'),
    load<ConfigModule>('server/config.js'),
    load<OutboxModule>('server/mail/outbox.js'),
    load<ApiKeyModule>('core/api-key.js'),
    load<IdsModule>('core/ids.js'),
  ]);
  return { app, store, config, outbox, apiKey, ids };
}
