/**
 * `sdk`: @breeze/verify (issue 13). A guarded Fastify route with a warm cache against the same
 * route unguarded, in one child process, side by side (target >= 0.90); and the cold verification
 * latency (a key the verifier has not seen: one POST /v1/keys/verify over loopback), p50 and p99.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLoad } from '../lib/load.js';
import { ROOT } from '../lib/paths.js';
import { figure } from '../lib/report.js';
import { type Section, type SectionContext, SkipSection } from '../lib/section.js';
import { startServerProcess } from '../lib/server.js';
import { median, sleep, spread } from '../lib/stats.js';
import { mintKeys } from '../lib/stores.js';
import { runWrk, wrkAvailable } from '../lib/wrk.js';

interface SdkModule {
  createVerifier(o: { server: string; apiKey: string; events?: boolean }): {
    verify(key: string): Promise<{ valid: boolean; code: string }>;
    close(): Promise<void>;
  };
}

async function loadSdk(): Promise<SdkModule> {
  try {
    return (await import('@breeze/verify' as string)) as SdkModule;
  } catch (err) {
    throw new SkipSection(`@breeze/verify is not built (npm run build): ${(err as Error).message}`);
  }
}

async function startGuardedChild(ctx: SectionContext, server: string, verifyKey: string, logFile: string) {
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [join(ROOT, 'bench', 'sdk-child.mjs')], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', fd],
    env: { ...process.env, BREEZE_SERVER: server, BREEZE_VERIFY_KEY: verifyKey },
  });
  closeSync(fd);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  ctx.cleanup.add(async () => {
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    child.kill('SIGKILL');
  });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const m = /listening on (http:\/\/127\.0\.0\.1:\d+) \(revocation stream (\w+)\)/.exec(
      readFileSync(logFile, 'utf8'),
    );
    if (m) return { url: m[1]!, stream: m[2]! };
    await sleep(50);
  }
  throw new Error(`the guarded Fastify child did not start:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
}

export const sdkSection: Section = {
  id: 'sdk',
  title: '@breeze/verify: guarded route vs unguarded, cold verify latency (SQLite)',
  budgetSeconds: 240,
  async run(ctx) {
    const sdk = await loadSdk();
    const dist = await ctx.dist();
    const { seconds, rounds, connections } = ctx.opts;
    const root = mkdtempSync(join(tmpdir(), 'breeze-bench-sdk-'));
    ctx.cleanup.add(() => rmSync(root, { recursive: true, force: true }));
    const dataDir = join(root, 'data');
    const coldCount = 300;
    const [verifyKey] = (await mintKeys(dist, { dataDir }, 1, process.env, ['read', 'verify'])).keys;
    const { keys } = await mintKeys(dist, { dataDir }, coldCount + 1, process.env, ['read']);
    const callerKey = keys.pop()!;
    const breeze = await startServerProcess({ dataDir, logFile: join(root, 'breeze.log') });
    ctx.cleanup.add(() => breeze.stop());
    ctx.log(`breeze at ${breeze.url} (${breeze.via})`);

    // cold verifications: every key once, one at a time, through a verifier that has seen none
    const v = sdk.createVerifier({ server: breeze.url, apiKey: verifyKey!, events: false });
    ctx.cleanup.add(() => v.close());
    for (let i = 0; i < 20; i++) await v.verify(callerKey); // connection and JIT warm-up (cached after the first)
    const latencies: number[] = [];
    for (const k of keys) {
      const t = performance.now();
      const r = await v.verify(k);
      latencies.push(performance.now() - t);
      if (!r.valid) throw new Error(`cold verify answered ${r.code}, expected VALID`);
    }
    latencies.sort((a, b) => a - b);
    const pct = (p: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!;
    ctx.addRun({
      kind: 'cold-verify',
      count: latencies.length,
      p50: pct(50),
      p99: pct(99),
      max: latencies.at(-1),
    });
    ctx.addFigure(
      figure({
        id: 'sdk.cold_verify_p50_ms',
        label: 'cold verify (uncached key) p50, loopback',
        value: pct(50),
        unit: 'ms',
        note: `${latencies.length} keys, sequential`,
      }),
    );
    ctx.addFigure(
      figure({
        id: 'sdk.cold_verify_p99_ms',
        label: 'cold verify p99, loopback',
        value: pct(99),
        unit: 'ms',
      }),
    );

    // guarded vs unguarded, same handler, same Fastify process, warm cache, ABBA rounds
    const child = await startGuardedChild(ctx, breeze.url, verifyKey!, join(root, 'child.log'));
    if (child.stream !== 'up')
      ctx.note('the revocation stream was not up when the load started (cache TTL 1 s)');
    const probe = await fetch(`${child.url}/guarded`, { headers: { 'xi-api-key': callerKey } });
    await probe.arrayBuffer();
    if (probe.status !== 200) throw new Error(`/guarded answered ${probe.status} with a valid key`);
    const refused = await fetch(`${child.url}/guarded`);
    await refused.arrayBuffer();
    if (refused.status !== 401) throw new Error(`/guarded answered ${refused.status} without a key`);
    const load = (path: string, secs: number) =>
      runLoad({ url: child.url, path, keys: [callerKey], connections, seconds: secs });
    await load('/open', 2);
    await load('/guarded', 2);
    const ratios: number[] = [];
    const guardedRps: number[] = [];
    const openRps: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? ['/guarded', '/open'] : ['/open', '/guarded'];
      const got: Record<string, number> = {};
      for (const path of order) {
        const r = await load(path, seconds);
        if (r.unexpected > 0 || r.errors > 0) {
          throw new Error(
            `${path}: ${r.unexpected} unexpected answers, ${r.errors} errors (${JSON.stringify(r.statusCodes)})`,
          );
        }
        ctx.addRun({ kind: 'load', ...r });
        got[path] = r.rps;
      }
      guardedRps.push(got['/guarded']!);
      openRps.push(got['/open']!);
      ratios.push(got['/guarded']! / got['/open']!);
    }
    ctx.addFigure(
      figure({
        id: 'sdk.guarded_over_open',
        label: 'guarded route (warm cache) ÷ same route unguarded',
        value: median(ratios),
        unit: 'x',
        target: { op: '>=', value: 0.9 },
        note: `median of ${rounds} ABBA rounds, spread ${spread(ratios).toFixed(2)}`,
      }),
    );
    ctx.addFigure(
      figure({ id: 'sdk.guarded_rps', label: 'guarded route', value: median(guardedRps), unit: 'req/s' }),
    );
    ctx.addFigure(
      figure({ id: 'sdk.open_rps', label: 'unguarded route', value: median(openRps), unit: 'req/s' }),
    );

    // the same pair under wrk -t1 -c32, reported beside: a C client that leaves the server a core.
    // On a 2-vCPU VM it reads lower: each answer of the slower route is more often the one that wakes
    // the idle client on the other CPU, and that wake-up (an IPI under the hypervisor) is charged
    // to the server's system time (see bench/README.md)
    const wrk = wrkAvailable();
    if (!wrk.available) {
      ctx.note(`guarded ÷ unguarded under wrk: not measured (${wrk.why})`);
      return;
    }
    const wrkLoad = async (path: string, secs: number) => {
      const r = await runWrk({
        url: child.url + path,
        headers: { 'xi-api-key': callerKey },
        connections: 32,
        seconds: secs,
      });
      if (r.non2xx || r.socketErrors)
        throw new Error(`${path} under wrk: ${r.non2xx} non-2xx, ${r.socketErrors} socket errors`);
      return r.rps;
    };
    await wrkLoad('/open', 2);
    await wrkLoad('/guarded', 2);
    const wrkRatios: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? ['/guarded', '/open'] : ['/open', '/guarded'];
      const got: Record<string, number> = {};
      for (const path of order) {
        got[path] = await wrkLoad(path, seconds);
        ctx.addRun({ kind: 'load-wrk', path, rps: got[path] });
      }
      wrkRatios.push(got['/guarded']! / got['/open']!);
    }
    ctx.addFigure(
      figure({
        id: 'sdk.guarded_over_open_wrk',
        label: 'guarded ÷ unguarded under wrk -t1 -c32 (reported)',
        value: median(wrkRatios),
        unit: 'x',
        note: `median of ${rounds} ABBA rounds, spread ${spread(wrkRatios).toFixed(2)}`,
      }),
    );
  },
};
