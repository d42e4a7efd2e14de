import { spawn } from 'node:child_process';
import { KEY_PREFIX } from '../../../core/api-key.js';
import { findKeysInBuffer, type KeyHit } from '../../../core/key-scan.js';
import { UsageError, UserError } from '../../errors.js';
import type { ScanStats } from './files.js';

/** A key on an added line of a diff. */
export interface DiffHit extends KeyHit {
  file: string;
  /** the commit that added it (history); absent for the staged changes */
  commit?: string;
}

const NEEDLE = Buffer.from(KEY_PREFIX, 'latin1');
const COMMIT_MARK = 0x01; // --format=%x01%H: no diff line starts with it

/** `"b/na\"me"` -> `b/na"me` (git's C-style quoting of unusual paths). */
function unquote(path: string): string {
  if (!path.startsWith('"')) return path;
  const bytes: number[] = [];
  const body = Buffer.from(path.slice(1, -1), 'utf8');
  const simple: Record<string, number> = { n: 10, t: 9, r: 13, '"': 34, '\\': 92, a: 7, b: 8, f: 12, v: 11 };
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as number;
    if (c !== 92) {
      bytes.push(c);
      continue;
    }
    const next = String.fromCharCode(body[i + 1] as number);
    if (/[0-7]/.test(next)) {
      bytes.push(Number.parseInt(body.toString('latin1', i + 1, i + 4), 8));
      i += 3;
    } else {
      bytes.push(simple[next] ?? (body[i + 1] as number));
      i += 1;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * Parses `git diff`/`git log -p` output (unified=0) as it streams and searches only ADDED lines,
 * each with its line number in the new version of its file. Lines without `brz_` cost one
 * Buffer#indexOf.
 */
class DiffScanner {
  private commit: string | undefined;
  private file: string | null = null;
  private inHunk = false;
  private newLine = 0;
  private rest: Buffer = Buffer.alloc(0);

  constructor(
    private readonly stats: ScanStats,
    private readonly onHit: (hit: DiffHit) => void,
  ) {}

  push(chunk: Buffer): void {
    this.stats.bytes += chunk.length;
    const buf = this.rest.length > 0 ? Buffer.concat([this.rest, chunk]) : chunk;
    let start = 0;
    for (let nl = buf.indexOf(10); nl !== -1; nl = buf.indexOf(10, start)) {
      this.line(buf, start, nl);
      start = nl + 1;
    }
    this.rest = Buffer.from(buf.subarray(start));
  }

  end(): void {
    if (this.rest.length > 0) this.line(this.rest, 0, this.rest.length);
    this.rest = Buffer.alloc(0);
  }

  private line(buf: Buffer, start: number, end: number): void {
    const first = buf[start];
    if (this.inHunk) {
      if (first === 0x2b /* + */) {
        const at = this.newLine++;
        if (this.file !== null) {
          const i = buf.indexOf(NEEDLE, start);
          if (i !== -1 && i < end) {
            for (const h of findKeysInBuffer(buf.subarray(start + 1, end))) {
              this.onHit({
                ...h,
                line: at,
                file: this.file,
                ...(this.commit ? { commit: this.commit } : {}),
              });
            }
          }
        }
        return;
      }
      if (first === 0x20 /* context */) {
        this.newLine++;
        return;
      }
      if (first === 0x2d /* - */ || first === 0x5c /* \ No newline */) return;
      if (first === 0x40 /* @@ */) {
        this.hunk(buf.toString('latin1', start, end));
        return;
      }
      this.inHunk = false; // a header line of the next file or commit
    }
    if (first === COMMIT_MARK) {
      this.commit = buf.toString('latin1', start + 1, end).trim();
      this.file = null;
      return;
    }
    const text = buf.toString('utf8', start, end);
    if (text.startsWith('diff --git ')) {
      this.file = null;
    } else if (text.startsWith('+++ ')) {
      const path = unquote(text.slice(4));
      this.file = path === '/dev/null' ? null : path.replace(/^b\//, '');
      this.stats.files++;
    } else if (text.startsWith('@@')) {
      this.hunk(text);
    }
  }

  private hunk(header: string): void {
    const m = /^@@+ (?:-\d+(?:,\d+)? )+\+(\d+)(?:,\d+)? @@/.exec(header);
    if (!m) return;
    this.newLine = Number(m[1]);
    this.inHunk = true;
  }
}

/** Runs git with `args` in `cwd` and feeds its stdout to a DiffScanner. */
function scanDiffOutput(
  args: string[],
  cwd: string,
  stats: ScanStats,
  onHit: (hit: DiffHit) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const scanner = new DiffScanner(stats, onHit);
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => scanner.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 4000) stderr += chunk.toString('utf8');
    });
    child.on('error', (err) =>
      reject(
        new UserError(`Cannot run git: ${err.message}.`, {
          hint: 'Install git, or scan files without --git-history / --staged.',
        }),
      ),
    );
    child.on('close', (code) => {
      if (code !== 0) {
        // not a repository: the user's mistake (exit 2), not the "live key found" exit 1 that
        // pre-commit hooks and CI jobs act on
        // (`git diff --cached` outside one falls back to --no-index and refuses the option instead)
        if (/not a git repository|git diff --no-index/i.test(stderr)) {
          return reject(
            new UsageError(`Not a git repository: ${cwd}.`, {
              hint: 'Run it inside a git repository, or pass the repository as a path.',
            }),
          );
        }
        const first = stderr.trim().split('\n')[0] ?? '';
        return reject(
          // the subcommand: the first word that is neither an option nor the value of a `-c`
          new UserError(
            `git ${args.find((a, i) => !a.startsWith('-') && args[i - 1] !== '-c') ?? ''} failed in ${cwd}: ${first}`,
          ),
        );
      }
      scanner.end();
      resolve();
    });
  });
}

const DIFF_OPTIONS = [
  '--unified=0',
  '--no-color',
  '--no-ext-diff',
  '--no-textconv',
  '--src-prefix=a/',
  '--dst-prefix=b/',
];

/** Every commit of every ref, its ADDED lines only (`git log -p`): keys that were ever committed. */
export function scanHistory(cwd: string, stats: ScanStats, onHit: (hit: DiffHit) => void): Promise<void> {
  return scanDiffOutput(
    ['-c', 'core.quotePath=false', 'log', '--all', '-p', '--format=%x01%H', ...DIFF_OPTIONS],
    cwd,
    stats,
    onHit,
  );
}

/** The ADDED lines of the staged changes (what `git commit` is about to record). */
export function scanStaged(cwd: string, stats: ScanStats, onHit: (hit: DiffHit) => void): Promise<void> {
  return scanDiffOutput(
    ['-c', 'core.quotePath=false', 'diff', '--cached', ...DIFF_OPTIONS],
    cwd,
    stats,
    onHit,
  );
}
