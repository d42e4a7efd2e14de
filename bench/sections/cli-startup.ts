import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliEnv, cliHas, timeCommand } from '../lib/cli.js';
import { BIN } from '../lib/paths.js';
import { figure } from '../lib/report.js';
import { type Section, SkipSection } from '../lib/section.js';
import { median, shuffle } from '../lib/stats.js';
import { mintKeys } from '../lib/stores.js';

interface Subject {
  id: string;
  label: string;
  argv: string[];
  /** what a correct run prints: a run that does not is not timed as a success */
  check(stdout: string): boolean;
  /** environment, when not the section's own */
  env?: NodeJS.ProcessEnv;
}

/**
 * Start-up cost of the commands people put in their shell prompt and scripts, against a bare
 * `node -e 0` on the same machine: ratio of medians over interleaved runs (each round runs every
 * command once, in a fresh random order, so drift and caches hit all of them alike).
 */
export const cliStartupSection: Section = {
  id: 'cli',
  title: 'CLI start-up (file credential store)',
  budgetSeconds: 300,
  async run(ctx) {
    const missing = [
      ['--version', cliHas([], ['--version'])],
      ['token', cliHas(['token'])],
      ['env', cliHas(['env'], ['--format'])],
      ['login --with-key', cliHas(['login'], ['--with-key'])],
    ].filter(([, ok]) => !ok);
    if (missing.length > 0) {
      throw new SkipSection(`the CLI has no ${missing.map(([n]) => `"breeze ${n}"`).join(', ')} yet`);
    }
    const dist = await ctx.dist();
    const configDir = mkdtempSync(join(tmpdir(), 'breeze-bench-cli-'));
    ctx.cleanup.add(() => rmSync(configDir, { recursive: true, force: true }));
    const env = cliEnv(configDir);
    // the embedded server stays resident between commands (docs/architecture.md): stop it at the end
    const stopResident = () =>
      timeCommand([process.execPath, BIN, 'server', 'stop'], env, { timeoutMs: 30_000 });
    ctx.cleanup.add(async () => {
      await stopResident();
    });

    // A real key in the embedded server's data dir (<config dir>/server), saved the way a user
    // would: `breeze login --with-key` reading it from stdin (it checks the key with GET /v1/me).
    const { keys } = await mintKeys(dist, { dataDir: join(configDir, 'server') }, 1);
    const key = keys[0]!;
    const login = await timeCommand([process.execPath, BIN, 'login', '--with-key'], env, {
      input: `${key}\n`,
      timeoutMs: 30_000,
    });
    if (login.code !== 0) {
      throw new Error(
        `breeze login --with-key exited ${login.code}: ${login.stderr.replace(key, '<key>').slice(0, 500)}`,
      );
    }

    // NODE_EXTRA_CA_CERTS (set on some machines) makes every Node start read a CA bundle: it pads
    // the baseline, so the start-up figures are given with it as set here and without it
    const noCa = cliEnv(configDir);
    delete noCa.NODE_EXTRA_CA_CERTS;
    const caSet = Boolean(process.env.NODE_EXTRA_CA_CERTS);
    const subjects: Subject[] = [
      { id: 'node', label: 'node -e 0', argv: [process.execPath, '-e', '0'], check: (o) => o === '' },
      {
        id: 'version',
        label: 'breeze --version',
        argv: [process.execPath, BIN, '--version'],
        check: (o) => /^\d+\.\d+\.\d+/.test(o.trim()),
      },
      {
        id: 'token',
        label: 'breeze token',
        argv: [process.execPath, BIN, 'token'],
        check: (o) => o.trim() === key,
      },
      {
        id: 'env',
        label: 'breeze env',
        argv: [process.execPath, BIN, 'env'],
        check: (o) => o.includes(`BREEZE_API_KEY='${key}'`),
      },
      // commands that need the embedded server (<config dir>/server)
      {
        id: 'status',
        label: 'breeze status (embedded)',
        argv: [process.execPath, BIN, 'status', '--json'],
        check: (o) => o.includes('"valid": true'),
      },
      {
        id: 'keys_list',
        label: 'breeze keys list (embedded)',
        argv: [process.execPath, BIN, 'keys', 'list', '--json'],
        check: (o) => o.includes('"data"'),
      },
    ];
    if (caSet) {
      for (const s of subjects.filter((x) =>
        ['node', 'token', 'env', 'status', 'keys_list'].includes(x.id),
      )) {
        subjects.push({
          ...s,
          id: `${s.id}_noca`,
          label: `${s.label} [NODE_EXTRA_CA_CERTS unset]`,
          env: noCa,
        });
      }
    }

    const times = new Map<string, number[]>(subjects.map((s) => [s.id, []]));
    const warmup = 2;
    for (let round = 0; round < warmup + ctx.opts.cliRuns; round++) {
      for (const s of shuffle([...subjects])) {
        const r = await timeCommand(s.argv, s.env ?? env);
        if (r.code !== 0 || !s.check(r.stdout)) {
          throw new Error(
            `${s.label} exited ${r.code} with unexpected output (stderr: ${r.stderr.replace(key, '<key>').slice(0, 300)})`,
          );
        }
        if (round >= warmup) times.get(s.id)!.push(r.ms);
      }
    }

    // The cold first command: no resident server yet, so `status` starts it (spawn, open the
    // database, listen) and then asks it. The rounds above are the warm case (it already runs).
    const coldRuns = Math.min(ctx.opts.cliRuns, 5);
    const cold: number[] = [];
    for (let i = 0; i < coldRuns; i++) {
      const stop = await stopResident();
      if (stop.code !== 0)
        throw new Error(`breeze server stop exited ${stop.code}: ${stop.stderr.slice(0, 300)}`);
      const r = await timeCommand(subjects.find((x) => x.id === 'status')!.argv, env, { timeoutMs: 60_000 });
      if (r.code !== 0 || !r.stdout.includes('"valid": true')) {
        throw new Error(
          `cold breeze status exited ${r.code} (stderr: ${r.stderr.replace(key, '<key>').slice(0, 300)})`,
        );
      }
      cold.push(r.ms);
    }
    times.set('status_cold', cold);

    const med = (id: string) => median(times.get(id)!);
    for (const s of subjects) {
      ctx.addFigure(
        figure({ id: `cli.${s.id}.median_ms`, label: `${s.label}, median`, value: med(s.id), unit: 'ms' }),
      );
    }
    // the ratios the release notes quote, side by side from the same interleaved rounds
    const ratio = (id: string, label: string, over: string, overLabel: string, target?: number) =>
      ctx.addFigure(
        figure({
          id: `cli.${id}.over_${over}`,
          label: `${label} ÷ ${overLabel}`,
          value: med(id) / med(over),
          unit: 'x',
          target: target === undefined ? undefined : { op: '<=', value: target },
        }),
      );
    ratio('version', 'breeze --version', 'node', 'node -e 0', 1.1);
    ratio('token', 'breeze token', 'node', 'node -e 0', 1.1);
    ratio('env', 'breeze env', 'node', 'node -e 0', 1.1);
    ratio('status', 'breeze status (embedded)', 'token', 'breeze token', 2);
    ratio('keys_list', 'breeze keys list (embedded)', 'token', 'breeze token', 2);
    for (const id of ['status', 'keys_list']) {
      ctx.addFigure(
        figure({
          id: `cli.${id}.under_250ms`,
          label: `${subjects.find((s) => s.id === id)!.label}, median`,
          value: med(id),
          unit: 'ms',
          target: { op: '<=', value: 250 },
        }),
      );
    }
    if (caSet) {
      ratio('token_noca', 'breeze token', 'node_noca', 'node -e 0 [NODE_EXTRA_CA_CERTS unset]', 1.1);
      ratio('env_noca', 'breeze env', 'node_noca', 'node -e 0 [NODE_EXTRA_CA_CERTS unset]', 1.1);
      const tokenNoCa = 'breeze token [NODE_EXTRA_CA_CERTS unset]';
      ratio('status_noca', 'breeze status (embedded)', 'token_noca', tokenNoCa, 2);
      ratio('keys_list_noca', 'breeze keys list (embedded)', 'token_noca', tokenNoCa, 2);
      for (const id of ['status_noca', 'keys_list_noca']) {
        ctx.addFigure(
          figure({
            id: `cli.${id}.under_250ms`,
            label: `${subjects.find((s) => s.id === id)!.label}, median`,
            value: med(id),
            unit: 'ms',
            target: { op: '<=', value: 250 },
          }),
        );
      }
    }
    const base = caSet ? 'node_noca' : 'node';
    for (const id of ['token', 'env']) {
      const sub = caSet ? `${id}_noca` : id;
      ctx.addFigure(
        figure({
          id: `cli.${sub}.minus_node_ms`,
          label: `breeze ${id} − node -e 0, NODE_EXTRA_CA_CERTS unset (median difference)`,
          value: med(sub) - med(base),
          unit: 'ms',
          target: { op: '<=', value: 6 },
        }),
      );
    }
    ctx.addFigure(
      figure({
        id: 'cli.status_cold.median_ms',
        label: 'breeze status (embedded), cold: starts the resident server, median',
        value: med('status_cold'),
        unit: 'ms',
      }),
    );
    ratio('status_cold', 'breeze status (embedded, cold)', 'token', 'breeze token');
    for (const s of subjects) ctx.addRun({ command: s.label, ms: times.get(s.id) });
    ctx.addRun({ command: 'breeze status (embedded, cold)', ms: cold });
    ctx.note(
      `${ctx.opts.cliRuns} timed runs per command after ${warmup} warm-up rounds, interleaved in random order; ` +
        'time = spawn to exit, output checked on every run; BREEZE_STORAGE=file with a key saved by ' +
        '"breeze login --with-key"; status and keys list are the warm case (the resident embedded ' +
        `server already runs); the cold case (after "breeze server stop") is ${coldRuns} separate runs`,
    );
  },
};
