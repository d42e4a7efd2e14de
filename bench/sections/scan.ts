import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cliEnv, cliHas } from '../lib/cli.js';
import { BIN, ROOT } from '../lib/paths.js';
import { figure } from '../lib/report.js';
import { type Section, SkipSection } from '../lib/section.js';
import { median } from '../lib/stats.js';

interface Measured {
  wallS: number;
  /** user + system CPU seconds of the process and its threads (GNU time), NaN without it */
  cpuS: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

const GNU_TIME = '/usr/bin/time';

/** Runs argv under GNU time (when installed) for wall and CPU time. */
function measure(argv: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Measured> {
  const timeFile = join(tmpdir(), `breeze-bench-time-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const useTime = existsSync(GNU_TIME);
  const full = useTime ? [GNU_TIME, '-o', timeFile, '-f', '%U %S', ...argv] : argv;
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(full[0] as string, full.slice(1), {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
      let cpuS = Number.NaN;
      if (useTime) {
        try {
          const [u, s] = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
          cpuS = (u ?? Number.NaN) + (s ?? Number.NaN);
        } catch {
          // no figure
        }
        rmSync(timeFile, { force: true });
      }
      resolve({ wallS, cpuS, code, stdout, stderr });
    });
  });
}

/** Deterministic pseudo-random text (a 1 MiB block of words and lines, sliced per file). */
function textBlock(): string {
  const alnum = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  const words: string[] = [];
  for (let i = 0; i < 2000; i++) {
    let w = '';
    for (let j = 0; j < 2 + ((i * 7) % 10); j++) w += alnum[(i * 31 + j * 17) % 62];
    words.push(w);
  }
  const parts: string[] = [];
  let n = 0;
  let s = 7;
  while (n < 1 << 20) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const w = words[s % 2000] as string;
    parts.push(s % 11 === 0 ? `${w}\n` : `${w} `);
    n += w.length + 1;
  }
  return parts.join('');
}

/**
 * A tree of `totalBytes` of text files (1 kB .. 200 kB, 100 directories), with `planted` real keys
 * (checksum-valid, never issued) and as many look-alikes (wrong checksum) spread over it, plus a
 * `brz_` that is no key on every 50th file: the search must look at each candidate.
 */
async function generateTree(dir: string, totalBytes: number, planted: number): Promise<number> {
  const { generateApiKey } = (await import(pathToFileURL(join(ROOT, 'dist', 'core', 'api-key.js')).href)) as {
    generateApiKey(): string;
  };
  const block = textBlock();
  let total = 0;
  let i = 0;
  let keys = 0;
  while (total < totalBytes) {
    const size = 1000 + ((i * 7919) % 200_000);
    const sub = join(dir, `d${i % 100}`);
    if (i < 100) mkdirSync(sub, { recursive: true });
    const off = (i * 4099) % (block.length - size);
    let text = block.slice(off, off + size);
    if (keys < planted && i % 37 === 0) {
      const key = generateApiKey();
      const bad = `${key.slice(0, -1)}${key.endsWith('0') ? '1' : '0'}`;
      text = `${text}\nAPI_KEY=${key}\nOLD=${bad}\n`;
      keys++;
    }
    if (i % 50 === 0) text = `brz_notakey ${text}`;
    writeFileSync(join(sub, `f${i}.txt`), text);
    total += text.length;
    i++;
  }
  return keys;
}

function parseSummary(stderr: string): { files: number; mb: number; scanS: number } | null {
  const m = /in ([\d,]+) files? \(([\d.]+) MB\).*; ([\d.]+) s\./.exec(stderr);
  if (!m) return null;
  return { files: Number(m[1]!.replace(/,/g, '')), mb: Number(m[2]), scanS: Number(m[3]) };
}

/**
 * `breeze scan --offline` throughput on the project's own tree and on a generated 1 GB tree, beside
 * `rg brz_` (one thread, and its default) on the same tree as the anchor. Wall time and CPU time
 * (user + system of all threads, from GNU time): MB per CPU-second is the one-core figure and does
 * not depend on what else the machine runs. Warm page cache (one unrecorded run of each first).
 */
export const scanSection: Section = {
  id: 'scan',
  title: 'breeze scan throughput vs rg brz_',
  budgetSeconds: 900,
  async run(ctx) {
    if (!cliHas(['scan'], ['--offline'])) throw new SkipSection('the CLI has no "breeze scan --offline" yet');
    await ctx.dist();
    const configDir = mkdtempSync(join(tmpdir(), 'breeze-bench-scan-'));
    ctx.cleanup.add(() => rmSync(configDir, { recursive: true, force: true }));
    const env = cliEnv(configDir);
    const rg = (await measure(['rg', '--version'], env, 10_000).catch(() => null))?.code === 0;
    if (!rg) ctx.note('rg (ripgrep) is not installed: no anchor figures (apt-get install ripgrep).');

    const genDir = mkdtempSync(join(tmpdir(), 'breeze-bench-tree-'));
    ctx.cleanup.add(() => rmSync(genDir, { recursive: true, force: true }));
    const gigabyte = ctx.opts.rounds <= 1 ? 200e6 : 1e9;
    ctx.log(`scan: generating a ${gigabyte / 1e9} GB tree in ${genDir}`);
    const planted = await generateTree(genDir, gigabyte, 200);

    const trees = [
      { id: 'own', label: 'own tree', dir: ROOT, expect: null as number | null },
      { id: 'gen', label: `generated ${gigabyte / 1e9} GB`, dir: genDir, expect: planted },
    ];
    const rounds = Math.max(3, ctx.opts.rounds);
    for (const tree of trees) {
      const subjects = [
        { id: 'breeze', argv: [process.execPath, BIN, 'scan', '--offline', '--json', tree.dir] },
        {
          id: 'breeze8',
          argv: [process.execPath, BIN, 'scan', '--offline', '--json', '--jobs', '8', tree.dir],
        },
        ...(rg
          ? [
              { id: 'rg1', argv: ['rg', '-j1', '--count-matches', 'brz_', tree.dir] },
              { id: 'rg', argv: ['rg', '--count-matches', 'brz_', tree.dir] },
            ]
          : []),
      ];
      const runs: Record<string, Measured[]> = {};
      let summary: ReturnType<typeof parseSummary> = null;
      for (let r = -1; r < rounds; r++) {
        const order = r % 2 === 0 ? subjects : [...subjects].reverse();
        for (const s of order) {
          const m = await measure(s.argv, env, 300_000);
          if (s.id.startsWith('breeze')) {
            // exit 0: --offline never finds a live key
            if (m.code !== 0) throw new Error(`breeze scan exited ${m.code}: ${m.stderr.slice(0, 400)}`);
            const found = (JSON.parse(m.stdout) as { findings: unknown[] }).findings.length;
            if (tree.expect !== null && found !== tree.expect) {
              throw new Error(
                `breeze scan found ${found} keys in the generated tree, ${tree.expect} were planted`,
              );
            }
            summary = parseSummary(m.stderr);
          }
          if (r >= 0) {
            runs[s.id] ??= [];
            runs[s.id]?.push(m);
          }
        }
      }
      if (!summary) throw new Error('breeze scan printed no summary');
      const mb = summary.mb;
      const wall = (id: string) => median((runs[id] ?? []).map((m) => m.wallS));
      const cpu = (id: string) => median((runs[id] ?? []).map((m) => m.cpuS));
      ctx.addRun({ tree: tree.id, files: summary.files, mb, runs });
      ctx.addFigure(
        figure({
          id: `scan.${tree.id}.breeze_mb_per_cpu_s`,
          label: `${tree.label}: breeze scan, MB per CPU-second (one core)`,
          value: mb / cpu('breeze'),
          unit: 'MB/s',
          target: tree.id === 'gen' ? { op: '>=', value: 200 } : undefined,
          note: `${summary.files} files, ${mb} MB; median of ${rounds}`,
        }),
      );
      ctx.addFigure(
        figure({
          id: `scan.${tree.id}.breeze_mb_per_s`,
          label: `${tree.label}: breeze scan, wall MB/s (process start included)`,
          value: mb / wall('breeze'),
          unit: 'MB/s',
        }),
      );
      ctx.addFigure(
        figure({
          id: `scan.${tree.id}.breeze8_mb_per_cpu_s`,
          label: `${tree.label}: breeze scan --jobs 8 (async reads), MB per CPU-second`,
          value: mb / cpu('breeze8'),
          unit: 'MB/s',
        }),
      );
      ctx.addFigure(
        figure({
          id: `scan.${tree.id}.breeze8_mb_per_s`,
          label: `${tree.label}: breeze scan --jobs 8, wall MB/s`,
          value: mb / wall('breeze8'),
          unit: 'MB/s',
        }),
      );
      ctx.addFigure(
        figure({
          id: `scan.${tree.id}.breeze_files_per_s`,
          label: `${tree.label}: breeze scan, files/s (wall)`,
          value: summary.files / wall('breeze'),
          unit: 'files/s',
        }),
      );
      if (rg) {
        ctx.addFigure(
          figure({
            id: `scan.${tree.id}.rg1_mb_per_cpu_s`,
            label: `${tree.label}: rg -j1 brz_, MB per CPU-second (anchor)`,
            value: mb / cpu('rg1'),
            unit: 'MB/s',
          }),
        );
        ctx.addFigure(
          figure({
            id: `scan.${tree.id}.breeze_wall_over_rg1`,
            label: `${tree.label}: wall time breeze ÷ rg -j1`,
            value: wall('breeze') / wall('rg1'),
            unit: 'x',
          }),
        );
        ctx.addFigure(
          figure({
            id: `scan.${tree.id}.breeze_wall_over_rg`,
            label: `${tree.label}: wall time breeze ÷ rg (all threads)`,
            value: wall('breeze') / wall('rg'),
            unit: 'x',
          }),
        );
      }
    }
    ctx.note(
      'rg reads the files .gitignore leaves (and skips hidden ones); breeze scan the files git lists (hidden included), so "own tree" byte counts differ slightly; the MB figures are breeze\'s.',
    );
  },
};
