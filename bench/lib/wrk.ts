import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * wrk (Debian's `wrk` package), the load generator the issues state their throughput targets in
 * (`wrk -c32`). It is a small C program: on a 2-core machine it leaves the server nearly a whole
 * core, where autocannon (JavaScript, in the bench process) takes most of the other one and spends
 * more of it the larger the answer it parses, which a ratio of two routes then reads as the
 * server's cost.
 */
export function wrkAvailable(): { available: true } | { available: false; why: string } {
  const r = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  if (r.error) return { available: false, why: 'wrk is not installed (apt-get install wrk)' };
  return { available: true };
}

export interface WrkSpec {
  /** full URL (loopback) */
  url: string;
  headers?: Record<string, string>;
  /** a POST of this body (wrk sends it through a Lua script: wrk.method, wrk.body) */
  body?: string;
  connections: number;
  seconds: number;
}

export interface WrkResult {
  rps: number;
  requests: number;
  /** answers that were not 2xx, and socket errors (connect, read, write, timeout) */
  non2xx: number;
  socketErrors: number;
}

/** One bounded `wrk -t1` run (one thread: the server keeps the other core). */
export async function runWrk(spec: WrkSpec): Promise<WrkResult> {
  const args = ['-t1', `-c${spec.connections}`, `-d${spec.seconds}s`, '--timeout', '10s'];
  for (const [k, v] of Object.entries(spec.headers ?? {})) args.push('-H', `${k}: ${v}`);
  let scriptDir: string | null = null;
  if (spec.body !== undefined) {
    // a Lua long string takes the body as it is (no escapes): refused if it holds its closing
    // bracket, or a carriage return (Lua reads one as a line end)
    if (spec.body.includes(']==]') || spec.body.includes('\r'))
      throw new Error('wrk: the POST body holds "]==]" or a carriage return');
    scriptDir = mkdtempSync(join(tmpdir(), 'breeze-bench-wrk-'));
    const script = join(scriptDir, 'post.lua');
    // the newline after the opening bracket is dropped by Lua, so a body's own first newline stays
    writeFileSync(script, `wrk.method = "POST"\nwrk.body = [==[\n${spec.body}]==]\n`);
    args.push('-s', script);
  }
  args.push(spec.url);
  const out = await new Promise<string>((resolve, reject) => {
    execFile('wrk', args, { timeout: (spec.seconds + 30) * 1000 }, (err, stdout, stderr) => {
      // not err.message: it holds the command line, and with it the key headers' plaintext
      if (err) reject(new Error(`wrk failed (exit ${err.code ?? err.signal ?? '?'}): ${stderr.trim()}`));
      else resolve(stdout);
    });
  }).finally(() => {
    if (scriptDir) rmSync(scriptDir, { recursive: true, force: true });
  });
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? Number.NaN);
  const requests = num(/(\d+) requests in/);
  const rps = num(/Requests\/sec:\s+([\d.]+)/);
  if (!Number.isFinite(requests) || !Number.isFinite(rps)) throw new Error(`wrk printed no figures: ${out}`);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = errs ? errs.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return { rps, requests, non2xx, socketErrors };
}
