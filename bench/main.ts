/**
 * `npm run bench`: the figures that go into release notes. Each section is bounded in time, cleans
 * up after itself, and says "skipped: <why>" when its prerequisites are missing; the rest still runs.
 * The table goes to stdout, progress to stderr, everything measured to .bench-build/results.json.
 *
 *   node bench/run.mjs [--only sqlite,postgres,cli,login,teams-sqlite,teams-postgres,verify-api,dashboard] [--quick] [--seconds N] [--rounds N]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Cleanup } from './lib/cleanup.js';
import { type Dist, loadDist } from './lib/dist.js';
import { othersCpuShare } from './lib/machine.js';
import { BUILD_DIR, ROOT } from './lib/paths.js';
import { type Figure, renderTable, type SectionResult } from './lib/report.js';
import { type BenchOptions, type Section, type SectionContext, SkipSection } from './lib/section.js';
import { sleep } from './lib/stats.js';
import { auditSection } from './sections/audit.js';
import { cliStartupSection } from './sections/cli-startup.js';
import { dashboardSection } from './sections/dashboard.js';
import { loginSection } from './sections/login.js';
import { runMaskSection } from './sections/run-mask.js';
import { scanSection } from './sections/scan.js';
import { sdkSection } from './sections/sdk.js';
import { teamsPostgresSection, teamsSqliteSection } from './sections/teams.js';
import { postgresSection, sqliteSection } from './sections/verify.js';
import { verifyApiSection } from './sections/verify-api.js';

const SECTIONS: Section[] = [
  sqliteSection,
  postgresSection,
  cliStartupSection,
  loginSection,
  teamsSqliteSection,
  teamsPostgresSection,
  scanSection,
  verifyApiSection,
  sdkSection,
  runMaskSection,
  auditSection,
  dashboardSection,
];

function parseOptions(): { opts: BenchOptions; only: Set<string> | null } {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      quick: { type: 'boolean', default: false },
      seconds: { type: 'string' },
      rounds: { type: 'string' },
      connections: { type: 'string' },
      'large-store': { type: 'string' },
    },
    allowPositionals: false,
  });
  const quick = values.quick === true;
  const int = (v: string | undefined, fallback: number) => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`not a positive integer: ${v}`);
    return n;
  };
  const opts: BenchOptions = {
    seconds: int(values.seconds, quick ? 2 : 3),
    rounds: int(values.rounds, quick ? 1 : 4),
    connections: int(values.connections, 50),
    smallStore: 1000,
    largeStore: int(values['large-store'], 1_000_000),
    cliRuns: quick ? 8 : 30,
    loginRuns: quick ? 2 : 5,
  };
  const only = values.only ? new Set(values.only.split(',').map((s) => s.trim())) : null;
  if (only) {
    for (const id of only) {
      if (!SECTIONS.some((s) => s.id === id)) throw new Error(`unknown section "${id}"`);
    }
  }
  return { opts, only };
}

function gitRevision(): string | null {
  try {
    const rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim();
    return dirty ? `${rev}+dirty` : rev;
  } catch {
    return null;
  }
}

async function runSection(
  section: Section,
  opts: BenchOptions,
  dist: () => Promise<Dist>,
): Promise<SectionResult> {
  const result: SectionResult = {
    id: section.id,
    title: section.title,
    status: 'ok',
    figures: [],
    runs: [],
    notes: [],
    seconds: 0,
  };
  const cleanup = new Cleanup();
  const started = Date.now();
  const log = (m: string) => process.stderr.write(`[${section.id}] ${m}\n`);
  const ctx: SectionContext = {
    opts,
    cleanup,
    dist,
    log,
    addFigure: (f: Figure) => result.figures.push(f),
    addRun: (r) => result.runs.push(r),
    note: (t) => result.notes.push(t),
  };
  log(`start (bounded to ${section.budgetSeconds} s)`);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`did not finish within its ${section.budgetSeconds} s budget`)),
      section.budgetSeconds * 1000,
    );
  });
  try {
    await Promise.race([section.run(ctx), deadline]);
  } catch (err) {
    if (err instanceof SkipSection) {
      result.status = 'skipped';
      result.reason = err.message;
      log(`skipped: ${err.message}`);
    } else {
      result.status = 'failed';
      result.reason = (err as Error).message;
      log(`FAILED: ${(err as Error).stack ?? err}`);
    }
  } finally {
    clearTimeout(timer);
    await cleanup.run();
  }
  result.seconds = (Date.now() - started) / 1000;
  return result;
}

async function main(): Promise<void> {
  const { opts, only } = parseOptions();
  let distPromise: Promise<Dist> | undefined;
  const dist = () => {
    distPromise ??= loadDist();
    return distPromise;
  };
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadAvgAtStart: loadavg().map((x) => Number(x.toFixed(2))),
  };
  process.stderr.write(
    `breeze ${pkg.version} bench on ${machine.cpus} CPU(s), load average ${machine.loadAvgAtStart.join(' ')}\n`,
  );

  const started = Date.now();
  const sections: SectionResult[] = [];
  const othersCpu: Record<string, number> = {};
  for (const s of SECTIONS) {
    if (only && !only.has(s.id)) continue;
    await sleep(300); // let the previous section's processes finish exiting
    // the bench is idle now: whatever CPU is in use belongs to someone else
    othersCpu[s.id] = Number((await othersCpuShare(1000)).toFixed(2));
    sections.push(await runSection(s, opts, dist));
  }
  const busyMachine = Object.values(othersCpu).some((x) => x > 0.15);

  const summary = {
    version: pkg.version,
    revision: gitRevision(),
    startedAt: new Date(started).toISOString(),
    seconds: (Date.now() - started) / 1000,
    machine: { ...machine, loadAvgAtEnd: loadavg().map((x) => Number(x.toFixed(2))) },
    options: opts,
    /** CPU share other processes took while the bench sat idle, before each section */
    othersCpuBeforeSection: othersCpu,
    busyMachine,
    sections,
  };
  mkdirSync(BUILD_DIR, { recursive: true });
  const out = join(BUILD_DIR, 'results.json');
  writeFileSync(out, `${JSON.stringify(summary, null, 2)}\n`);

  const judged = sections.flatMap((s) => s.figures).filter((f) => f.verdict !== 'INFO');
  const missed = judged.filter((f) => f.verdict === 'MISS').length;
  process.stdout.write(`\nBreeze ${pkg.version} (${summary.revision ?? 'no git'}) benchmark\n`);
  process.stdout.write(
    `machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memGiB} GiB, Node ${machine.node}; ` +
      `load average at start ${machine.loadAvgAtStart.join(' ')}, at end ${summary.machine.loadAvgAtEnd.join(' ')}\n`,
  );
  const others = Object.entries(othersCpu)
    .map(([id, x]) => `${Number.isNaN(x) ? '?' : Math.round(x * 100)}% before ${id}`)
    .join(', ');
  process.stdout.write(
    summary.busyMachine
      ? `WARNING: other processes were using the CPU (${others}): these figures are not release figures\n`
      : `other processes' CPU use while the bench was idle: ${others}\n`,
  );
  process.stdout.write(`${renderTable(sections)}\n\n`);
  process.stdout.write(
    `${judged.length - missed} of ${judged.length} targets met; ` +
      `${sections.filter((s) => s.status === 'skipped').length} section(s) skipped, ` +
      `${sections.filter((s) => s.status === 'failed').length} failed; ${summary.seconds.toFixed(0)} s in all\n`,
  );
  process.stdout.write(`results: ${out}\n`);
  // a failed section is a broken bench; a missed target is a finding, not a failure of the bench.
  // Exit explicitly: a section abandoned at its deadline may still hold handles.
  const code = sections.some((s) => s.status === 'failed') ? 1 : 0;
  process.stdout.write('', () => process.exit(code));
}

await main();
