import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postgresAvailability, startPostgres } from '../../test/helpers/postgres.js';
import { childCommands } from '../lib/child-commands.js';
import { ROOT } from '../lib/paths.js';
import { figure } from '../lib/report.js';
import type { Section, SectionContext } from '../lib/section.js';
import { median, sleep } from '../lib/stats.js';

/**
 * Issue 14: audit writes must not lower key-creation throughput by more than 10%. One server on a
 * fresh store of each engine answers `POST /v1/api-keys` under the same load with its audit log on,
 * then switched off (the test-only `AuditService.disabled`, switched through bench/audit-child.mjs's
 * stdin); rounds alternate the order (ABBA), the figure is the median of the per-round ratios with ÷
 * without. One process, not two: two processes of the same server, started the same way, differ by
 * more than the audit log costs (seen here: 56,000 against 88,000 req/s of `/healthz`, the same
 * code), and which one was started first then decides the figure.
 */

interface AutocannonResult {
  '2xx': number;
  non2xx: number;
  errors: number;
  timeouts: number;
  duration: number;
  latency: { p50: number; p99: number };
}
type Autocannon = (opts: {
  url: string;
  method: string;
  connections: number;
  duration: number;
  timeout: number;
  headers: Record<string, string>;
  body: string;
}) => Promise<AutocannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

interface Child {
  url: string;
  apiKey: string;
  /** switches the running server's audit log (answered "ok" on its stdout) */
  setAudit(on: boolean): Promise<void>;
  stop(): Promise<void>;
}

async function startChild(dataDir: string, databaseUrl?: string): Promise<Child> {
  const child: ChildProcess = spawn(
    process.execPath,
    [join(ROOT, 'bench', 'audit-child.mjs'), dataDir, 'on', databaseUrl ?? ''],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const command = childCommands(child, 'the audit bench server');
  let err = '';
  const ready = new Promise<{ url: string; apiKey: string }>((resolve, reject) => {
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      const m = /listening on (\S+) key=(\S+)/.exec(err);
      if (m) resolve({ url: m[1] as string, apiKey: m[2] as string });
    });
    child.once('exit', (code) =>
      reject(new Error(`audit bench server exited (${code}): ${err.slice(-2000)}`)),
    );
  });
  const { url, apiKey } = await Promise.race([
    ready,
    sleep(30_000).then(() => {
      throw new Error('audit bench server did not start in 30 s');
    }),
  ]);
  return {
    url,
    apiKey,
    setAudit: (on: boolean) => command(`audit ${on ? 'on' : 'off'}`),
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(5000).then(() => child.kill('SIGKILL'))]);
    },
  };
}

async function createKeys(child: Child, connections: number, seconds: number) {
  const r = await autocannon({
    url: `${child.url}/v1/api-keys`,
    method: 'POST',
    connections,
    duration: seconds,
    timeout: 10,
    headers: { 'xi-api-key': child.apiKey, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench key', scopes: ['read'] }),
  });
  if (r.non2xx > 0 || r.errors > 0 || r.timeouts > 0) {
    throw new Error(`key creation had ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`);
  }
  return { rps: r['2xx'] / r.duration, p50: r.latency.p50, p99: r.latency.p99, total: r['2xx'] };
}

async function measure(ctx: SectionContext, engine: 'sqlite' | 'postgres', databaseUrl?: string) {
  const dir = mkdtempSync(join(tmpdir(), `breeze-bench-audit-${engine}-`));
  ctx.cleanup.add(() => rmSync(dir, { recursive: true, force: true }));
  const server = await startChild(dir, databaseUrl);
  ctx.cleanup.add(() => server.stop());
  // SQLite serialises writers: a few connections saturate it; more only queue
  const connections = engine === 'sqlite' ? 10 : 20;
  const run = async (which: 'on' | 'off', seconds: number) => {
    await server.setAudit(which === 'on');
    return createKeys(server, connections, seconds);
  };
  const seconds = ctx.opts.seconds;
  ctx.log(`warm-up (${engine})`);
  await run('on', 1);
  await run('off', 1);
  const ratios: number[] = [];
  const rpsOn: number[] = [];
  const rpsOff: number[] = [];
  for (let round = 0; round < ctx.opts.rounds; round++) {
    const order = round % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const);
    const got: Record<string, number> = {};
    for (const which of order) {
      const r = await run(which, seconds);
      got[which] = r.rps;
      ctx.addRun({ engine, round, audit: which, ...r });
      ctx.log(`round ${round + 1}: audit ${which}: ${Math.round(r.rps)} keys/s (p99 ${r.p99} ms)`);
    }
    rpsOn.push(got.on as number);
    rpsOff.push(got.off as number);
    ratios.push((got.on as number) / (got.off as number));
  }
  ctx.addFigure(
    figure({
      id: `audit.${engine}.create_with_audit_rps`,
      label: `${engine}: POST /v1/api-keys with the audit log`,
      value: median(rpsOn),
      unit: 'req/s',
    }),
  );
  ctx.addFigure(
    figure({
      id: `audit.${engine}.create_without_audit_rps`,
      label: `${engine}: POST /v1/api-keys, audit switched off`,
      value: median(rpsOff),
      unit: 'req/s',
    }),
  );
  ctx.addFigure(
    figure({
      id: `audit.${engine}.with_over_without`,
      label: `${engine}: key creation with audit ÷ without`,
      value: median(ratios),
      unit: 'x',
      target: { op: '>=', value: 0.9 },
      note: `per-round ratios ${ratios.map((x) => x.toFixed(3)).join(', ')}`,
    }),
  );
  await server.stop();
}

export const auditSection: Section = {
  id: 'audit',
  title: 'Key creation with and without audit writes (SQLite, PostgreSQL)',
  budgetSeconds: 400,
  async run(ctx) {
    await measure(ctx, 'sqlite');
    const pg = postgresAvailability();
    if (!pg.available) {
      ctx.note(`PostgreSQL part skipped: ${pg.why}`);
      return;
    }
    const cluster = await startPostgres();
    ctx.cleanup.add(() => cluster.stop());
    await measure(ctx, 'postgres', await cluster.createDatabase('bench_audit'));
  },
};
