import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { postgresAvailability, startPostgres } from '../../test/helpers/postgres.js';
import { type LoadResult, runLoad } from '../lib/load.js';
import { figure } from '../lib/report.js';
import { type Section, type SectionContext, SkipSection } from '../lib/section.js';
import { type ServerProcess, startServerProcess } from '../lib/server.js';
import { median } from '../lib/stats.js';
import { analyzePostgres, BENCH_EMAIL, mintKeys } from '../lib/stores.js';

/**
 * Issue 12: authenticated `GET /v1/me` with the team model at scale — 1,000 organizations × 100
 * members × 10 keys (1M keys, 100k users and memberships) — against the same real keys in a store
 * with one organization. The role check rides on the cached verification record (one join at
 * lookup, no query per request on a hit), so the goal is ≥ 0.9x.
 *
 * Seeding is bulk SQL inside one transaction per engine (a recursive CTE on SQLite,
 * generate_series on PostgreSQL); the 1,000 real keys (minted through KeyService) are moved into
 * organization #1, whose members they then sit among, and their user made an `admin` there.
 */

const ORGS = 1000;
const MEMBERS = 100;
const KEYS_PER_MEMBER = 10;

type Engine = 'sqlite' | 'postgres';

/** One statement list for both engines: only the series and the padding differ. */
function seedSql(engine: Engine): string[] {
  const series = (n: number) =>
    engine === 'sqlite'
      ? `WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < ${n}) SELECT g FROM s`
      : `SELECT g FROM generate_series(1, ${n}) AS g`;
  const pad = (expr: string, width: number) =>
    engine === 'sqlite' ? `printf('%0${width}d', ${expr})` : `lpad((${expr})::text, ${width}, '0')`;
  const rnd = engine === 'sqlite' ? `hex(randomblob(32))` : `md5(random()::text) || md5(random()::text)`;
  const at = `'2026-01-01T00:00:00.000Z'`;
  const div = (a: string, b: number) => `((${a}) / ${b})`;
  return [
    `INSERT INTO users (id, email, created_at)
       SELECT 'usr_T' || ${pad('g', 25)}, 'm' || g || '@teams.bench.invalid', ${at} FROM (${series(ORGS * MEMBERS)}) AS x`,
    `INSERT INTO organizations (id, name, personal_user_id, created_at)
       SELECT 'org_T' || ${pad('g', 25)}, 'Org ' || g, NULL, ${at} FROM (${series(ORGS)}) AS x`,
    `INSERT INTO projects (id, org_id, name, created_at)
       SELECT 'proj_T' || ${pad('g', 24)}, 'org_T' || ${pad('g', 25)}, 'default', ${at} FROM (${series(ORGS)}) AS x`,
    `INSERT INTO memberships (org_id, user_id, role, joined_at)
       SELECT 'org_T' || ${pad(`${div('g - 1', MEMBERS)} + 1`, 25)}, 'usr_T' || ${pad('g', 25)},
              CASE WHEN (g - 1) % ${MEMBERS} = 0 THEN 'owner' WHEN (g - 1) % ${MEMBERS} < 5 THEN 'admin'
                   WHEN (g - 1) % ${MEMBERS} < 80 THEN 'member' ELSE 'viewer' END, ${at}
       FROM (${series(ORGS * MEMBERS)}) AS x`,
    `INSERT INTO api_keys (id, user_id, org_id, project_id, name, prefix, hash, scopes, created_at, created_via)
       SELECT 'key_T' || ${pad('g', 25)},
              'usr_T' || ${pad(`${div('g - 1', KEYS_PER_MEMBER)} + 1`, 25)},
              'org_T' || ${pad(`${div('g - 1', MEMBERS * KEYS_PER_MEMBER)} + 1`, 25)},
              'proj_T' || ${pad(`${div('g - 1', MEMBERS * KEYS_PER_MEMBER)} + 1`, 24)},
              'filler', 'brz_AbCdEfGh', ${rnd}, 'read write', ${at}, 'api'
       FROM (${series(ORGS * MEMBERS * KEYS_PER_MEMBER)}) AS x`,
  ];
}

/** The bench user's real keys join organization #1 (project `default`) as an admin's keys. */
function moveSql(userId: string): [string, unknown[]][] {
  const org = `org_T${'1'.padStart(25, '0')}`;
  const project = `proj_T${'1'.padStart(24, '0')}`;
  return [
    [
      `INSERT INTO memberships (org_id, user_id, role, joined_at) VALUES ('${org}', $1, 'admin', '2026-01-01T00:00:00.000Z')`,
      [userId],
    ],
    [`UPDATE api_keys SET org_id = '${org}', project_id = '${project}' WHERE user_id = $1`, [userId]],
  ];
}

async function seedSqlite(file: string): Promise<number> {
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 5000');
    db.pragma('synchronous = OFF');
    db.pragma('cache_size = -262144');
    const userId = (db.prepare('SELECT id FROM users WHERE email = ?').get(BENCH_EMAIL) as { id: string }).id;
    db.transaction(() => {
      for (const s of seedSql('sqlite')) db.exec(s);
      for (const [s, params] of moveSql(userId)) db.prepare(s.replaceAll('$1', '?')).run(...params);
    })();
    db.exec('ANALYZE');
    db.pragma('wal_checkpoint(TRUNCATE)');
    return (db.prepare('SELECT count(*) AS n FROM api_keys').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

async function seedPostgres(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const user = await client.query<{ id: string }>('SELECT id FROM users WHERE email = $1', [BENCH_EMAIL]);
    await client.query('BEGIN');
    for (const s of seedSql('postgres')) await client.query(s);
    for (const [s, params] of moveSql(user.rows[0]!.id)) await client.query(s, params);
    await client.query('COMMIT');
    return Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM api_keys')).rows[0]!.n);
  } finally {
    await client.end();
  }
}

async function measure(ctx: SectionContext, engine: Engine): Promise<void> {
  const { opts } = ctx;
  const dist = await ctx.dist();
  const root = mkdtempSync(join(tmpdir(), `breeze-bench-teams-${engine}-`));
  ctx.cleanup.add(() => rmSync(root, { recursive: true, force: true }));
  const smallDir = join(root, 'one-org');
  const largeDir = join(root, 'teams');
  let smallUrl: string | undefined;
  let largeUrl: string | undefined;
  let env: Record<string, string> | undefined;
  let keys: string[];
  let t = Date.now();
  let total: number;
  if (engine === 'sqlite') {
    ({ keys } = await mintKeys(dist, { dataDir: smallDir }, opts.smallStore));
    cpSync(smallDir, largeDir, { recursive: true });
    t = Date.now();
    total = await seedSqlite(join(largeDir, dist.store.SQLITE_FILE));
  } else {
    const avail = postgresAvailability();
    if (!avail.available) throw new SkipSection(`PostgreSQL cannot be started here: ${avail.why}`);
    const pgs = await startPostgres();
    ctx.cleanup.add(() => pgs.stop());
    mkdirSync(smallDir, { recursive: true, mode: 0o700 });
    smallUrl = await pgs.createDatabase('teams_small');
    env = { BREEZE_PEPPER: randomBytes(32).toString('base64url') };
    ({ keys } = await mintKeys(dist, { dataDir: smallDir, databaseUrl: smallUrl }, opts.smallStore, {
      ...process.env,
      ...env,
    }));
    await pgs.query('CREATE DATABASE teams_large TEMPLATE teams_small');
    largeUrl = pgs.url('teams_large');
    cpSync(smallDir, largeDir, { recursive: true });
    t = Date.now();
    total = await seedPostgres(largeUrl);
    await analyzePostgres(smallUrl);
    await analyzePostgres(largeUrl);
  }
  ctx.log(
    `seeded ${ORGS} orgs x ${MEMBERS} members x ${KEYS_PER_MEMBER} keys (${total.toLocaleString('en-US')} keys in all) in ${Date.now() - t} ms`,
  );

  const serve = async (dataDir: string, databaseUrl: string | undefined, name: string) => {
    const server = await startServerProcess({
      dataDir,
      databaseUrl,
      logFile: join(root, `${name}.log`),
      env,
    });
    ctx.cleanup.add(() => server.stop());
    return server;
  };
  const servers: Record<'one' | 'teams', ServerProcess> = {
    one: await serve(smallDir, smallUrl, 'one'),
    teams: await serve(largeDir, largeUrl, 'teams'),
  };
  // the same key answers on both, in its organization, with the role it has there
  for (const [name, s] of Object.entries(servers)) {
    const res = await fetch(`${s.url}/v1/me`, { headers: { 'xi-api-key': keys[0]! } });
    const body = (await res.json()) as { org?: { name: string; role: string } };
    if (res.status !== 200 || !body.org) throw new Error(`${name}: GET /v1/me answered ${res.status}`);
    ctx.log(`${name}: the bench key is in "${body.org.name}" as ${body.org.role}`);
  }

  const workloads = [
    { id: 'hot@1org', server: 'one' as const, keys: [keys[0]!], label: 'GET /v1/me, one key, 1 org' },
    {
      id: 'hot@teams',
      server: 'teams' as const,
      keys: [keys[0]!],
      label: 'GET /v1/me, one key, 1,000 orgs x 100 members x 10 keys',
    },
    {
      id: 'rr@1org',
      server: 'one' as const,
      keys,
      label: `GET /v1/me, ${keys.length} keys round-robin, 1 org`,
    },
    {
      id: 'rr@teams',
      server: 'teams' as const,
      keys,
      label: `GET /v1/me, ${keys.length} keys round-robin, 1,000 orgs (1M keys)`,
    },
  ];
  for (const w of workloads) {
    await runLoad({
      url: servers[w.server].url,
      path: '/v1/me',
      keys: w.keys,
      connections: opts.connections,
      seconds: Math.min(2, opts.seconds),
    });
  }
  const results = new Map<string, LoadResult[]>();
  for (let round = 0; round < opts.rounds; round++) {
    for (const w of round % 2 === 0 ? workloads : [...workloads].reverse()) {
      const r = await runLoad({
        url: servers[w.server].url,
        path: '/v1/me',
        keys: w.keys,
        connections: opts.connections,
        seconds: opts.seconds,
      });
      ctx.log(`round ${round + 1} ${w.label}: ${Math.round(r.rps)} req/s`);
      ctx.addRun({ engine, section: 'teams', workload: w.id, round: round + 1, ...r });
      if (r.unexpected > 0 || r.errors > 0 || r.timeouts > 0) {
        throw new Error(
          `${w.label}: ${r.unexpected} unexpected answers, ${r.errors} errors, ${r.timeouts} timeouts`,
        );
      }
      results.set(w.id, [...(results.get(w.id) ?? []), r]);
    }
  }
  const rpsOf = (id: string) => (results.get(id) ?? []).map((r) => r.rps);
  const ratio = (a: string, b: string) => median(rpsOf(a).map((x, i) => x / rpsOf(b)[i]!));
  for (const w of workloads) {
    ctx.addFigure(
      figure({
        id: `teams.${engine}.${w.id}.rps`,
        label: w.label,
        value: median(rpsOf(w.id)),
        unit: 'req/s',
      }),
    );
  }
  for (const kind of ['hot', 'rr'] as const) {
    ctx.addFigure(
      figure({
        id: `teams.${engine}.${kind}_teams_over_1org`,
        label: `/v1/me (${kind === 'hot' ? 'one key' : `${keys.length} keys`}) 1,000 orgs ÷ 1 org`,
        value: ratio(`${kind}@teams`, `${kind}@1org`),
        unit: 'x',
        target: { op: '>=', value: 0.9 },
      }),
    );
  }
}

function section(engine: Engine, budgetSeconds: number): Section {
  return {
    id: `teams-${engine}`,
    title: `Teams: /v1/me with 1,000 orgs x 100 members x 10 keys vs 1 org, ${engine === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`,
    budgetSeconds,
    async run(ctx) {
      await measure(ctx, engine);
    },
  };
}

export const teamsSqliteSection = section('sqlite', 300);
export const teamsPostgresSection = section('postgres', 300);
