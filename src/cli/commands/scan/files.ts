import { execFile } from 'node:child_process';
import { close, closeSync, constants, fstat, fstatSync, open, openSync, read, readSync } from 'node:fs';
import { lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findKeysInBuffer, type KeyHit } from '../../../core/key-scan.js';

/** Files larger than this are skipped (minified bundles and data dumps; keys live in small files). */
export const DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024;
/** Bytes looked at for a NUL, as git does, to call a file binary. */
const BINARY_SNIFF_BYTES = 8000;
/**
 * Default reads in flight. 1: synchronous reads on the main thread, the cheapest per byte by far when
 * the files are in the page cache (no thread-pool hand-off per open/read/close: about 4x less CPU
 * than 8 asynchronous reads in `npm run bench`); `--jobs N` reads N files at once through libuv's
 * pool, which wins on a cold cache or a network file system.
 */
export const DEFAULT_JOBS = 1;
const FIRST_BUFFER_BYTES = 256 * 1024;

export interface ScanStats {
  files: number;
  bytes: number;
  skippedBinary: number;
  skippedLarge: number;
  /** files that vanished or could not be read (listed by git, removed since; permissions) */
  unreadable: number;
}

export function emptyStats(): ScanStats {
  return { files: 0, bytes: 0, skippedBinary: 0, skippedLarge: 0, unreadable: 0 };
}

function git(args: string[], cwd: string): Promise<string | null> {
  return new Promise((resolve) => {
    execFile('git', args, { cwd, maxBuffer: 1 << 30, encoding: 'utf8' }, (err, stdout) =>
      resolve(err ? null : stdout),
    );
  });
}

/**
 * The files under directory `dir` that git would consider: inside a work tree the tracked and the
 * untracked-but-not-ignored files (`git ls-files`); elsewhere the same rules (.gitignore files,
 * .git/info/exclude, core.excludesFile) applied through a throw-away empty repository. Without
 * git, a plain walk. Paths are relative to `dir`. Symbolic links are listed; the reader skips them.
 */
export async function listFiles(dir: string): Promise<string[]> {
  const split = (out: string) => out.split('\0').filter(Boolean);
  const inRepo = await git(
    ['-c', 'core.quotePath=false', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
    dir,
  );
  if (inRepo !== null) return split(inRepo);
  const empty = await mkdtemp(join(tmpdir(), 'breeze-scan-'));
  try {
    if ((await git(['init', '-q', '--bare', '--template=', empty], dir)) !== null) {
      const out = await git(
        ['--git-dir', empty, '--work-tree', '.', 'ls-files', '-z', '--others', '--exclude-standard'],
        dir,
      );
      if (out !== null) return split(out);
    }
  } finally {
    await rm(empty, { recursive: true, force: true });
  }
  return walk(dir);
}

/** Every regular file under `dir` (no symbolic link followed, `.git` skipped): the fallback without git. */
async function walk(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (entry.name !== '.git') out.push(...(await walk(dir, rel)));
    } else if (entry.isFile()) {
      out.push(rel);
    }
  }
  return out;
}

/** True when `path` is a directory (not through a symbolic link); false for files; throws when missing. */
export async function isDirectory(path: string): Promise<boolean> {
  return (await lstat(path)).isDirectory();
}

interface ReadResult {
  hits: KeyHit[];
  kind: 'scanned' | 'binary' | 'large' | 'unreadable';
  bytes: number;
}

/**
 * Reads one file into `state.buf` (grown as needed) and searches it. O_NOFOLLOW: a symbolic link
 * is never followed (the tree's own files are listed anyway, and a link may point out of it), so
 * opening one fails and it is skipped. Callback-style fs: a promise per call costs more than the
 * search of a small file.
 */
function scanOne(
  path: string,
  state: { buf: Buffer },
  maxBytes: number,
  followLinks: boolean,
  done: (r: ReadResult) => void,
): void {
  const flags = constants.O_RDONLY | (followLinks ? 0 : constants.O_NOFOLLOW);
  open(path, flags, (err, fd) => {
    if (err) return done({ hits: [], kind: 'unreadable', bytes: 0 });
    const finish = (r: ReadResult) => close(fd, () => done(r));
    fstat(fd, (err2, st) => {
      if (err2 || !st.isFile()) return finish({ hits: [], kind: 'unreadable', bytes: 0 });
      if (st.size > maxBytes) return finish({ hits: [], kind: 'large', bytes: 0 });
      if (state.buf.length < st.size) state.buf = Buffer.allocUnsafe(Math.max(st.size, state.buf.length * 2));
      const buf = state.buf;
      const size = st.size;
      let got = 0;
      const step = () => {
        if (got >= size) return searched();
        read(fd, buf, got, size - got, got, (err3, n) => {
          if (err3) return finish({ hits: [], kind: 'unreadable', bytes: 0 });
          if (n === 0) return searched(); // shrank meanwhile
          got += n;
          step();
        });
      };
      const searched = () => {
        const view = buf.subarray(0, got);
        if (view.subarray(0, BINARY_SNIFF_BYTES).indexOf(0) !== -1) {
          return finish({ hits: [], kind: 'binary', bytes: got });
        }
        finish({ hits: findKeysInBuffer(view), kind: 'scanned', bytes: got });
      };
      step();
    });
  });
}

/** scanOne, synchronously (see DEFAULT_JOBS). */
function scanOneSync(
  path: string,
  state: { buf: Buffer },
  maxBytes: number,
  followLinks: boolean,
): ReadResult {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (followLinks ? 0 : constants.O_NOFOLLOW));
  } catch {
    return { hits: [], kind: 'unreadable', bytes: 0 };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { hits: [], kind: 'unreadable', bytes: 0 };
    if (st.size > maxBytes) return { hits: [], kind: 'large', bytes: 0 };
    if (state.buf.length < st.size) state.buf = Buffer.allocUnsafe(Math.max(st.size, state.buf.length * 2));
    const buf = state.buf;
    let got = 0;
    while (got < st.size) {
      const n = readSync(fd, buf, got, st.size - got, got);
      if (n === 0) break;
      got += n;
    }
    const view = buf.subarray(0, got);
    if (view.subarray(0, BINARY_SNIFF_BYTES).indexOf(0) !== -1)
      return { hits: [], kind: 'binary', bytes: got };
    return { hits: findKeysInBuffer(view), kind: 'scanned', bytes: got };
  } catch {
    return { hits: [], kind: 'unreadable', bytes: 0 };
  } finally {
    closeSync(fd);
  }
}

/**
 * Scans `paths` with at most `jobs` reads in flight (1: synchronously, yielding to the event loop
 * now and then so Ctrl-C is seen); `onHits` gets each file's keys (in
 * completion order: callers sort). `followLinks` only for paths the user named one by one.
 */
export function scanFiles(
  paths: readonly string[],
  opts: { maxBytes?: number; followLinks?: boolean; jobs?: number; stats: ScanStats },
  onHits: (path: string, hits: KeyHit[]) => void,
): Promise<void> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_FILE_BYTES;
  const stats = opts.stats;
  const jobs = opts.jobs ?? DEFAULT_JOBS;
  const count = (path: string, r: ReadResult) => {
    if (r.kind === 'scanned') {
      stats.files++;
      stats.bytes += r.bytes;
      if (r.hits.length > 0) onHits(path, r.hits);
    } else if (r.kind === 'binary') stats.skippedBinary++;
    else if (r.kind === 'large') stats.skippedLarge++;
    else stats.unreadable++;
  };
  if (jobs <= 1) {
    return (async () => {
      const state = { buf: Buffer.allocUnsafe(FIRST_BUFFER_BYTES) };
      for (let i = 0; i < paths.length; i++) {
        const path = paths[i] as string;
        count(path, scanOneSync(path, state, maxBytes, opts.followLinks ?? false));
        if (i % 256 === 255) await new Promise<void>((r) => setImmediate(r));
      }
    })();
  }
  let next = 0;
  let running = 0;
  return new Promise((resolve) => {
    const pump = () => {
      while (running < jobs && next < paths.length) {
        const path = paths[next++] as string;
        const state = pool.pop() ?? { buf: Buffer.allocUnsafe(FIRST_BUFFER_BYTES) };
        running++;
        scanOne(path, state, maxBytes, opts.followLinks ?? false, (r) => {
          pool.push(state);
          running--;
          count(path, r);
          pump();
        });
      }
      if (running === 0 && next >= paths.length) resolve();
    };
    const pool: { buf: Buffer }[] = [];
    pump();
  });
}

/**
 * Scans a stream (stdin) as it comes: keys hold no newline, so everything up to the last newline
 * of what has arrived can be searched and dropped; line numbers carry over.
 */
export async function scanStream(
  stream: AsyncIterable<Buffer | string>,
  stats: ScanStats,
  onHits: (hits: KeyHit[]) => void,
): Promise<void> {
  let pending: Buffer = Buffer.alloc(0);
  let linesBefore = 0;
  // searches `pending` whole but keeps only hits starting before `upTo`, then drops up to there
  const flush = (upTo: number) => {
    const part = pending.subarray(0, upTo);
    const hits = findKeysInBuffer(pending).filter((h) => h.offset < upTo);
    if (hits.length > 0) onHits(hits.map((h) => ({ ...h, line: h.line + linesBefore })));
    let nl = part.indexOf(10);
    while (nl !== -1) {
      linesBefore++;
      nl = part.indexOf(10, nl + 1);
    }
    stats.bytes += upTo;
    pending = pending.subarray(upTo);
  };
  for await (const chunk of stream) {
    pending = Buffer.concat([pending, typeof chunk === 'string' ? Buffer.from(chunk) : chunk]);
    if (pending.length >= 1 << 20) {
      const lastNl = pending.lastIndexOf(10);
      if (lastNl !== -1) flush(lastNl + 1);
      else if (pending.length > 64 << 20) flush(pending.length - 64); // one endless line: keep more than a key
    }
  }
  flush(pending.length);
  stats.files++;
}
