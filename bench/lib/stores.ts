import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Dist } from './dist.js';

export const BENCH_EMAIL = 'bench@example.com';
const FILLER_EMAIL = 'filler@bench.invalid';

/**
 * Mints `count` real keys through the server's own code (buildApp's KeyService), in one
 * transaction, with the pepper `breeze serve` will use over the same location and environment:
 * BREEZE_PEPPER when set, else (SQLite only) the data dir's pepper file — startServer's rule.
 */
export async function mintKeys(
  dist: Dist,
  loc: { dataDir: string; databaseUrl?: string },
  count: number,
  env: NodeJS.ProcessEnv = process.env,
  scopes: string[] = ['read', 'write', 'admin'],
): Promise<{ keys: string[]; keyIds: string[] }> {
  const pepper = dist.config.resolvePepper(loc.databaseUrl ? undefined : loc.dataDir, env);
  const store = await dist.store.openStore(loc.databaseUrl ? { databaseUrl: loc.databaseUrl } : loc);
  try {
    const app = await dist.app.buildApp({
      store,
      mailer: new dist.outbox.OutboxMailer(join(loc.dataDir, 'outbox')),
      config: { pepper, dataDir: loc.dataDir },
    });
    await app.ready();
    const user = await store.users.ensure(BENCH_EMAIL);
    const minted = await store.transaction(async (tx) => {
      const out: { apiKey: string; id: string }[] = [];
      for (let i = 0; i < count; i++) {
        const { apiKey, row } = await app.breeze.keys.mint(
          {
            userId: user.id,
            name: `bench ${i}`,
            scopes,
            expiresAt: null,
            createdVia: 'api',
          },
          tx,
        );
        out.push({ apiKey, id: row.id });
      }
      return out;
    });
    await app.close();
    return { keys: minted.map((m) => m.apiKey), keyIds: minted.map((m) => m.id) };
  } finally {
    await store.close();
  }
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** ULID-shaped ids (time-ordered, like the server's), made cheaply for a million rows. */
function fillerId(prefix: string, ms: number, rnd: Buffer, at: number): string {
  let time = '';
  let t = ms;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  let tail = '';
  for (let i = 0; i < 16; i++) tail += CROCKFORD[rnd[at + i]! & 31];
  return `${prefix}_${time}${tail}`;
}

/**
 * Adds `count` filler keys (random hashes: no plaintext exists for them) owned by a filler user,
 * straight into the SQLite file in one transaction. Created over the past year, in id order, as
 * a store that grew to this size would hold them.
 */
export function fillSqlite(file: string, count: number): void {
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 5000');
    db.pragma('synchronous = OFF');
    db.pragma('cache_size = -262144');
    const now = Date.now();
    const userId = fillerId('usr', now - 366 * 86_400_000, randomBytes(16), 0);
    db.prepare('INSERT INTO users (id, email, created_at) VALUES (?, ?, ?)').run(
      userId,
      FILLER_EMAIL,
      new Date(now - 366 * 86_400_000).toISOString(),
    );
    const insert = db.prepare(
      `INSERT INTO api_keys (id, user_id, name, prefix, hash, scopes, created_at, created_via)
       VALUES (?, ?, ?, ?, ?, 'read write', ?, 'api')`,
    );
    const step = Math.floor((365 * 86_400_000) / Math.max(count, 1));
    const chunk = 100_000;
    db.transaction(() => {
      for (let base = 0; base < count; base += chunk) {
        const n = Math.min(chunk, count - base);
        const rnd = randomBytes(n * (16 + 32 + 8));
        for (let i = 0; i < n; i++) {
          const at = i * 56;
          const ms = now - 365 * 86_400_000 + (base + i) * step;
          let prefix = 'brz_';
          for (let j = 0; j < 8; j++) prefix += BASE62[rnd[at + 48 + j]! % 62];
          insert.run(
            fillerId('key', ms, rnd, at),
            userId,
            `filler ${base + i}`,
            prefix,
            rnd.subarray(at + 16, at + 48).toString('base64url'),
            new Date(ms).toISOString(),
          );
        }
      }
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

export function countSqliteKeys(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM api_keys').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** The PostgreSQL counterpart of fillSqlite, generated server-side in one statement. */
export async function fillPostgres(url: string, count: number): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('BEGIN');
    const user = await client.query<{ id: string }>(
      `INSERT INTO users (id, email, created_at)
       VALUES ('usr_' || upper(substr(md5(random()::text), 1, 26)), $1, $2) RETURNING id`,
      [FILLER_EMAIL, new Date(Date.now() - 366 * 86_400_000).toISOString()],
    );
    // ids: time-ordered like ULIDs; hashes: 32 random bytes in base64url, the shape of the real ones
    await client.query(
      `INSERT INTO api_keys (id, user_id, name, prefix, hash, scopes, created_at, created_via)
       SELECT 'key_' || lpad(upper(to_hex(g)), 26, '0'), $1, 'filler ' || g,
              'brz_' || substr(md5(g::text), 1, 8),
              rtrim(translate(encode(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), 'base64'),
                              '+/', '-_'), '='),
              'read write',
              to_char((now() - interval '365 days' + g * interval '30 seconds') AT TIME ZONE 'UTC',
                      'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
              'api'
       FROM generate_series(1, $2::int) AS g`,
      [user.rows[0]!.id, count],
    );
    await client.query('COMMIT');
    const n = await client.query<{ n: string }>('SELECT count(*) AS n FROM api_keys');
    return Number(n.rows[0]!.n);
  } finally {
    await client.end();
  }
}

export async function analyzePostgres(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('VACUUM ANALYZE');
  } finally {
    await client.end();
  }
}

/** Keys that pass the format and checksum check but exist nowhere: each one costs a store lookup. */
export function unknownKeys(dist: Dist, count: number): string[] {
  return Array.from({ length: count }, () => dist.apiKey.generateApiKey());
}
