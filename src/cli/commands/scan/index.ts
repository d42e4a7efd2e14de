import { isAbsolute, join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { displayPrefix } from '../../../core/api-key.js';
import type { KeyHit } from '../../../core/key-scan.js';
import { type CliContext, normaliseServer } from '../../context.js';
import { UsageError, UserError } from '../../errors.js';
import type { CommandHost } from '../host.js';
import { emptyStats, isDirectory, listFiles, type ScanStats, scanFiles, scanStream } from './files.js';
import { RULE_TOOLS, type RuleTool } from './rules.js';

export type FindingStatus = 'live' | 'not_live' | 'unchecked' | 'reported';

/** One key where it was found: CLI.md's `--json` shape (never more of the key than its prefix). */
export interface Finding {
  file: string;
  line: number;
  prefix: string;
  status: FindingStatus;
  commit?: string;
}

export interface ScanOptions {
  gitHistory?: boolean;
  stdin?: boolean;
  staged?: boolean;
  report?: boolean;
  offline?: boolean;
  any?: boolean;
  source?: string;
  /** files larger than this many bytes are skipped */
  maxFileSize?: number;
  /** files read at once (1: synchronous reads) */
  jobs?: number;
}

export interface ScanResult {
  findings: Finding[];
  stats: ScanStats;
  seconds: number;
  /** the server asked (null with --offline) */
  server: string | null;
  /** why some keys stayed unchecked, or a report failed (already safe to print) */
  problems: string[];
}

const KEY_LIKE = /brz_[0-9A-Za-z]{8,}/g;

/** A path or message with anything that looks like a key cut to its display prefix. */
export function withoutKeys(text: string): string {
  return text.replace(KEY_LIKE, (k) => `${displayPrefix(k)}…`);
}

interface Found {
  key: string;
  file: string;
  line: number;
  commit?: string;
}

/** Runs `fn` over `items` with at most `limit` at once. */
async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function collect(
  paths: string[],
  opts: ScanOptions,
  ctx: CliContext,
  stats: ScanStats,
): Promise<Found[]> {
  const found: Found[] = [];
  if (opts.gitHistory || opts.staged) {
    const { scanHistory, scanStaged } = await import('./git.js');
    const cwd = resolve(paths[0] ?? '.');
    const scan = opts.staged ? scanStaged : scanHistory;
    await scan(cwd, stats, (h) => found.push({ key: h.key, file: h.file, line: h.line, commit: h.commit }));
    return found;
  }
  const stdin = opts.stdin || paths.includes('-');
  const named = paths.filter((p) => p !== '-');
  if (named.length === 0 && !stdin) named.push('.');
  const fileHits: { file: string; hits: KeyHit[] }[] = [];
  const onHits = (file: string, hits: KeyHit[]) => fileHits.push({ file, hits });
  const single: string[] = [];
  // a file reached twice (`scan a.txt a.txt`, `scan . src`) is read and reported once
  const seen = new Set<string>();
  const firstTime = (f: string) => {
    const abs = resolve(f);
    if (seen.has(abs)) return false;
    seen.add(abs);
    return true;
  };
  for (const p of named) {
    let dir: boolean;
    try {
      dir = await isDirectory(p);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // a path that does not exist is a usage error (2): exit 1 means "a live key was found" to the
      // pre-commit hooks and CI jobs that run scan
      if (code === 'ENOENT') throw new UsageError(`No such file or directory: ${withoutKeys(p)}.`);
      throw new UserError(`Cannot read ${withoutKeys(p)} (${code}).`);
    }
    if (!dir) {
      if (firstTime(p)) single.push(p);
      continue;
    }
    const files = (await listFiles(p)).map((f) => (p === '.' ? f : join(p, f))).filter(firstTime);
    await scanFiles(files, { stats, maxBytes: opts.maxFileSize, jobs: opts.jobs }, onHits);
  }
  // a file named on the command line is read even through a symbolic link: the user chose it
  if (single.length > 0)
    await scanFiles(single, { stats, maxBytes: opts.maxFileSize, followLinks: true }, onHits);
  fileHits.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  for (const { file, hits } of fileHits) for (const h of hits) found.push({ key: h.key, file, line: h.line });
  if (stdin) {
    if (ctx.verbose) ctx.out.info('Reading standard input…');
    await scanStream(process.stdin, stats, (hits) => {
      for (const h of hits) found.push({ key: h.key, file: '-', line: h.line });
    });
  }
  return found;
}

/**
 * The server in use when only `.breeze.json` names it (no `--server`, no `BREEZE_SERVER`, and the
 * profile is not saved for that server): the scanned repository's choice, not the user's. Checking a
 * key sends it to that server, so a cloned repository could collect every live key it finds.
 */
function serverOnlyFromLinkFile(ctx: CliContext): { server: string; file: string } | undefined {
  if (!ctx.link?.server || ctx.source('server') !== 'link') return undefined;
  let server: string;
  try {
    server = ctx.server();
  } catch {
    return { server: ctx.link.server, file: ctx.link.path };
  }
  try {
    const saved = ctx.config.profile(ctx.profile)?.server;
    // the user logged this profile in to that very server: their choice, as in ctx.session()
    if (saved && normaliseServer(saved) === server) return undefined;
  } catch {
    // an unreadable saved server confirms nothing
  }
  return { server, file: ctx.link.path };
}

/**
 * `breeze scan`: finds checksum-valid Breeze keys in files, standard input, the staged changes or
 * every commit; asks the configured server which are live by authenticating with each key itself
 * (`GET /v1/me`; not with `offline`, nor when only `.breeze.json` names the server); reports live ones with `report`. Sets exit code 1 when a live
 * key was found (with `any`: when any key was). Findings hold a key's 12-character prefix only.
 */
export async function runScan(paths: string[], opts: ScanOptions, ctx: CliContext): Promise<ScanResult> {
  if (opts.report && opts.offline) throw new UsageError('--report needs the server: drop --offline.');
  if (opts.gitHistory && opts.staged) throw new UsageError('Pass --git-history or --staged, not both.');
  if ((opts.gitHistory || opts.staged) && (opts.stdin || paths.length > 1 || paths.includes('-'))) {
    throw new UsageError('--git-history and --staged take at most one path: the repository.');
  }
  if (opts.source !== undefined && !opts.report) throw new UsageError('--source goes with --report.');
  const started = performance.now();
  const stats = emptyStats();
  const found = await collect(paths, opts, ctx, stats);
  const problems: string[] = [];
  const status = new Map<string, FindingStatus>();
  const unique = [...new Set(found.map((f) => f.key))];
  let server: string | null = null;
  const untrusted = opts.offline || unique.length === 0 ? undefined : serverOnlyFromLinkFile(ctx);
  if (untrusted) {
    const s = withoutKeys(untrusted.server);
    problems.push(
      `Keys not checked${opts.report ? ' nor reported' : ''}: the server ${s} is named by ${withoutKeys(untrusted.file)}, not by you, and checking a key sends it there.`,
      `To check against ${s}, pass --server ${s} or set BREEZE_SERVER=${s}.`,
    );
  } else if (!opts.offline && unique.length > 0) {
    const { checkLiveness, reportLeak } = await import('../../../client/leaks.js');
    const client = await ctx.client();
    server = client.baseUrl;
    let unreachable: string | null = null;
    await eachLimited(unique, 4, async (key) => {
      if (unreachable !== null) return void status.set(key, 'unchecked');
      const r = await checkLiveness(client, key);
      status.set(key, r.status);
      if (r.error) {
        const why = withoutKeys(r.error.message);
        if (r.error.status === 0) unreachable = why;
        else problems.push(`${displayPrefix(key)}: not checked (${why})`);
      }
    });
    if (unreachable !== null) problems.push(`Keys not checked: ${unreachable}`);
    if (opts.report) {
      await eachLimited(
        unique.filter((k) => status.get(k) === 'live'),
        2,
        async (key) => {
          try {
            await reportLeak(client, key, opts.source);
            status.set(key, 'reported');
          } catch (err) {
            problems.push(`${displayPrefix(key)}: report failed (${withoutKeys((err as Error).message)})`);
          }
        },
      );
    }
  }
  const findings: Finding[] = found.map((f) => ({
    file: withoutKeys(f.file),
    line: f.line,
    prefix: displayPrefix(f.key),
    status: status.get(f.key) ?? 'unchecked',
    ...(f.commit ? { commit: f.commit } : {}),
  }));
  const live = findings.some((f) => f.status === 'live' || f.status === 'reported');
  if (live || (opts.any && findings.length > 0)) ctx.exitCode = 1;
  return { findings, stats, seconds: (performance.now() - started) / 1000, server, problems };
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(bytes < 1e7 ? 2 : 1)} MB`;
}

/** The people's lines on stderr after the findings. */
function summary(result: ScanResult, opts: ScanOptions): string[] {
  const { findings, stats } = result;
  const where = opts.gitHistory
    ? `the history (${megabytes(stats.bytes)} of diffs)`
    : opts.staged
      ? 'the staged changes'
      : `${plural(stats.files, 'file')} (${megabytes(stats.bytes)})`;
  const skipped = [
    stats.skippedBinary ? `${stats.skippedBinary} binary` : '',
    stats.skippedLarge ? `${stats.skippedLarge} too large` : '',
  ].filter(Boolean);
  const tail = `${skipped.length ? `; skipped ${skipped.join(', ')}` : ''}; ${result.seconds.toFixed(2)} s`;
  if (findings.length === 0) return [`No Breeze keys in ${where}${tail}.`];
  const count = (s: FindingStatus) => findings.filter((f) => f.status === s).length;
  const parts = [
    count('reported') ? `${count('reported')} reported` : '',
    count('live') ? `${count('live')} live` : '',
    count('not_live') ? `${count('not_live')} not live` : '',
    count('unchecked') ? `${count('unchecked')} unchecked` : '',
  ].filter(Boolean);
  const lines = [`${plural(findings.length, 'Breeze key')} in ${where} (${parts.join(', ')})${tail}.`];
  if (result.server) lines.push(`Checked against ${result.server}.`);
  if (count('live') > 0) {
    lines.push(
      'A live key works for anyone who can read it: rotate it ("breeze keys rotate <key_id>"), or run "breeze scan --report" to disable it now.',
    );
  }
  if (count('reported') > 0)
    lines.push(
      'Reported keys are disabled on the server (unless its leak policy is "notify"); their owners were mailed.',
    );
  if (opts.any && count('live') + count('reported') === 0) {
    lines.push('Remove the keys from the change (and rotate them if they were ever used).');
  }
  return lines;
}

export function createCommand(host: CommandHost): Command {
  return new Command('scan')
    .description(
      'find Breeze API keys in files, stdin or git history (checksum-valid only) and say which are live',
    )
    .argument('[paths...]', 'files and directories to scan (default "."; "-" reads standard input)')
    .option('--git-history', 'scan the added lines of every commit of every ref instead of the files')
    .option('--staged', 'scan the added lines of the staged changes (what the pre-commit hook runs)')
    .option('--stdin', 'scan standard input (as the path "-")')
    .option(
      '--report',
      'report live keys to the server (PLATFORM.md "Leak reports"): they are disabled at once',
    )
    .option('--source <url>', 'with --report: where the keys were seen (an http(s) URL)')
    .option('--offline', 'do not ask the server: statuses are "unchecked"')
    .option('--any', 'exit 1 for any key found, live or not (the pre-commit hook uses it)')
    .option('--max-file-size <MB>', 'skip files larger than this (default 10)', (v) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0)
        throw new UsageError(`Invalid --max-file-size "${v}": a number of MB.`);
      return n;
    })
    .option(
      '--jobs <n>',
      'files read at once (default 1: synchronous reads, fastest on a warm cache)',
      (v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1 || n > 256)
          throw new UsageError(`Invalid --jobs "${v}": 1 to 256.`);
        return n;
      },
    )
    .addOption(
      new Option('--rules <tool>', 'print a rule for another scanner that matches Breeze keys').choices([
        ...RULE_TOOLS,
      ]),
    )
    .option('--install-hook', 'add a git pre-commit hook that refuses commits adding a Breeze key')
    .addHelpText(
      'after',
      [
        '',
        'Exit status: 1 when a live key was found (with --any: any key), else 0.',
        'Output shows a key by its 12-character prefix only.',
        '',
        'Examples:',
        '  $ breeze scan',
        '  $ breeze scan --git-history --json',
        '  $ kubectl logs deploy/api | breeze scan --stdin',
        '  $ breeze scan src/ --report',
        '  $ breeze scan --rules gitleaks > .gitleaks.toml',
        '  $ breeze scan --install-hook',
      ].join('\n'),
    )
    .action(
      async (
        paths: string[],
        o: ScanOptions & { rules?: RuleTool; installHook?: boolean; maxFileSize?: number },
        cmd: Command,
      ) => {
        const ctx = await host.context(cmd);
        if (o.rules) {
          const { ruleFor } = await import('./rules.js');
          return ctx.out.data(ruleFor(o.rules).replace(/\n$/, '').split('\n'));
        }
        if (o.installHook) {
          const { installHook } = await import('./hook.js');
          const cwd = resolve(paths[0] ?? '.');
          const r = await installHook(isAbsolute(cwd) ? cwd : resolve(cwd));
          const what = { created: 'Installed', chained: 'Added to the existing', present: 'Already in' }[
            r.action
          ];
          if (ctx.json) return ctx.out.json({ hook: withoutKeys(r.path), action: r.action });
          return ctx.out.success(
            `${what} pre-commit hook ${withoutKeys(r.path)}: commits adding a Breeze key are refused.`,
          );
        }
        const opts: ScanOptions = {
          ...o,
          ...(o.maxFileSize !== undefined ? { maxFileSize: Math.floor(o.maxFileSize * 1024 * 1024) } : {}),
        };
        const result = await runScan(paths, opts, ctx);
        for (const p of result.problems) ctx.out.warn(p);
        if (ctx.json) {
          ctx.out.json({ findings: result.findings });
        } else if (result.findings.length > 0) {
          ctx.out.data(
            result.findings.map(
              (f) =>
                `${f.commit ? `${f.commit.slice(0, 12)} ` : ''}${f.file}:${f.line}  ${f.prefix}…  ${f.status}`,
            ),
          );
        }
        for (const line of summary(result, opts)) ctx.out.info(line);
      },
    );
}
