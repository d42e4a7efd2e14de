import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cliEnv, cliHas } from '../lib/cli.js';
import { DIST } from '../lib/dist.js';
import { BIN } from '../lib/paths.js';
import { figure } from '../lib/report.js';
import { type Section, SkipSection } from '../lib/section.js';
import { median, shuffle } from '../lib/stats.js';

const round1 = (x: number) => Math.round(x * 10) / 10;

/** MB written by the child per run. */
const MEGABYTES = 48;
const ROUNDS = 5;

/**
 * The child: MEGABYTES of log-like lines in 64 KiB writes, the key (plain, and base64 in a Basic
 * header) in one line of 50, so the masker has real matches to replace, not only a scan.
 */
const GENERATOR = `
const k = process.env.BREEZE_API_KEY;
const basic = Buffer.from('ci:' + k).toString('base64');
let text = '';
for (let i = 0; text.length < 65536; i++) {
  text += i % 50 === 0 ? 'Authorization: Basic ' + basic + ' key=' + k + '\\n'
    : '2026-12-01T03:00:00Z INFO build step ' + i + ' compiled 42 modules in 13 ms [=====>    ]\\n';
}
const chunk = Buffer.from(text);
let left = ${MEGABYTES} * 1048576;
function write() {
  while (left > 0) {
    left -= chunk.length;
    if (!process.stdout.write(chunk)) return process.stdout.once('drain', write);
  }
}
write();
`;

/** Runs argv, reads all its stdout; resolves with bytes and seconds (whole command, start-up included). */
function timed(
  argv: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ bytes: number; seconds: number; leaked: boolean; key: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'ignore'] });
    let bytes = 0;
    const key = env.BREEZE_API_KEY ?? '';
    let tail = '';
    let leaked = false;
    child.stdout.on('data', (d: Buffer) => {
      bytes += d.length;
      // look for the key across chunk boundaries without keeping the whole output
      const s = tail + d.toString('latin1');
      if (s.includes(key)) leaked = true;
      tail = s.slice(-key.length);
    });
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`${argv.join(' ')} exited ${code}`));
      resolve({ bytes, seconds: (performance.now() - started) / 1000, leaked, key });
    });
  });
}

/**
 * `breeze run --mask` throughput (issue 15): MB/s of a child's output through the masker (pipe
 * mode, as in CI) against `--no-mask` (the child writes to the same pipe directly) and against the
 * child alone; plus the masker alone, in process.
 */
export const runMaskSection: Section = {
  id: 'run-mask',
  title: 'breeze run --mask throughput (pipe mode)',
  budgetSeconds: 240,
  async run(ctx) {
    if (!cliHas(['run'], ['--mask'])) throw new SkipSection('the CLI has no "breeze run --mask" yet');
    await ctx.dist();
    const dir = mkdtempSync(join(tmpdir(), 'breeze-bench-mask-'));
    ctx.cleanup.add(() => rmSync(dir, { recursive: true, force: true }));
    const gen = join(dir, 'gen.js');
    writeFileSync(gen, GENERATOR);
    const { generateApiKey } = (await import(pathToFileURL(join(DIST, 'core', 'api-key.js')).href)) as {
      generateApiKey(): string;
    };
    const key = generateApiKey();
    const env = cliEnv(join(dir, 'config'), { BREEZE_API_KEY: key, BREEZE_SERVER: 'http://127.0.0.1:9' });
    delete env.CI;
    const subjects = {
      masked: [process.execPath, BIN, 'run', '--mask', '--', process.execPath, gen],
      unmasked: [process.execPath, BIN, 'run', '--no-mask', '--', process.execPath, gen],
      direct: [process.execPath, gen],
    } as const;
    const rates: Record<keyof typeof subjects, number[]> = { masked: [], unmasked: [], direct: [] };
    const ratios: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const got: Partial<Record<keyof typeof subjects, number>> = {};
      for (const name of shuffle(Object.keys(subjects) as Array<keyof typeof subjects>)) {
        const r = await timed([...subjects[name]], env);
        if (name === 'masked' && r.leaked) throw new Error('the key went through the masker');
        if (name !== 'masked' && !r.leaked) throw new Error(`${name}: the key was expected in the output`);
        const mbs = r.bytes / 1048576 / r.seconds;
        rates[name].push(mbs);
        got[name] = mbs;
        ctx.addRun({ round, name, bytes: r.bytes, seconds: r.seconds, mb_s: mbs });
      }
      ratios.push(got.masked! / got.unmasked!);
      ctx.log(
        `round ${round + 1}: ${Object.entries(got)
          .map(([n, v]) => `${n} ${v.toFixed(0)} MB/s`)
          .join(', ')}`,
      );
    }

    // the masker alone, in process: 256 MiB through push()
    const { Masker } = (await import(pathToFileURL(join(DIST, 'cli', 'run', 'mask.js')).href)) as {
      Masker: new (s: Array<{ name: string; value: string }>) => { push(b: Buffer): Buffer; end(): Buffer };
    };
    const sample = Buffer.from(
      Array.from({ length: 800 }, (_, i) =>
        i % 50 === 0 ? `key=${key}\n` : `2026-12-01T03:00:00Z INFO build step ${i} compiled 42 modules\n`,
      ).join(''),
    );
    const inProcess: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const m = new Masker([{ name: 'BREEZE_API_KEY', value: key }]);
      const started = performance.now();
      let bytes = 0;
      while (bytes < 256 * 1048576) {
        m.push(sample);
        bytes += sample.length;
      }
      m.end();
      inProcess.push(bytes / 1048576 / ((performance.now() - started) / 1000));
    }

    const note = `${MEGABYTES} MiB per run, whole command timed (start-up included), median of ${ROUNDS} interleaved rounds`;
    ctx.addFigure(
      figure({
        id: 'run_mask.masked_mb_s',
        label: 'breeze run --mask: MB/s through the masker (pipes)',
        value: round1(median(rates.masked)),
        unit: '',
        note,
      }),
    );
    ctx.addFigure(
      figure({
        id: 'run_mask.unmasked_mb_s',
        label: 'breeze run --no-mask: MB/s (child writes the pipe itself)',
        value: round1(median(rates.unmasked)),
        unit: '',
        note,
      }),
    );
    ctx.addFigure(
      figure({
        id: 'run_mask.direct_mb_s',
        label: 'the child alone (no breeze): MB/s',
        value: round1(median(rates.direct)),
        unit: '',
        note,
      }),
    );
    ctx.addFigure(
      figure({
        id: 'run_mask.masked_over_unmasked',
        label: 'masked ÷ unmasked throughput (per-round ratio)',
        value: median(ratios),
        unit: 'x',
        note,
      }),
    );
    ctx.addFigure(
      figure({
        id: 'run_mask.masker_in_process_mb_s',
        label: 'Masker.push alone, in process: MB/s',
        value: round1(median(inProcess)),
        unit: '',
        note: '256 MiB of log lines, 1 key per 50 lines',
      }),
    );
    ctx.note(
      `MB/s ranges: masked ${Math.min(...rates.masked).toFixed(0)}–${Math.max(...rates.masked).toFixed(0)}, unmasked ${Math.min(...rates.unmasked).toFixed(0)}–${Math.max(...rates.unmasked).toFixed(0)}, direct ${Math.min(...rates.direct).toFixed(0)}–${Math.max(...rates.direct).toFixed(0)}, masker alone ${Math.min(...inProcess).toFixed(0)}–${Math.max(...inProcess).toFixed(0)}`,
    );
  },
};
