import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * Creates `dir` (and parents) with mode 0700 when missing. An existing directory keeps its mode:
 * users may have chosen it.
 */
export function ensurePrivateDir(dir: string): void {
  const created = mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (created !== undefined) chmodSync(dir, 0o700);
}

/** Parsed JSON of `file`, or `undefined` when it does not exist. Throws on unreadable or corrupt files. */
export function readJsonFile<T>(file: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as T;
}

/**
 * Writes `file` atomically: a temporary file in the same directory (created with `mode`), fsync,
 * then rename over the target. Synchronous on purpose: no signal handler can run in the middle, and
 * a SIGKILL leaves either the old file or the new one (plus, at worst, a stray temporary file).
 */
export function writeFileAtomicSync(file: string, data: string, mode = 0o600): void {
  ensurePrivateDir(dirname(file));
  const tmp = join(dirname(file), `.${randomBytes(6).toString('hex')}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  try {
    chmodSync(tmp, mode); // umask may have narrowed or widened nothing; make it exact
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {}
    throw err;
  }
}

/**
 * Runs `fn` holding the config directory's lock (`<dir>/breeze.lock`, via proper-lockfile), so
 * read-modify-write cycles of concurrent `breeze` processes never interleave. A lock left by a
 * killed process goes stale after 10 s.
 */
export async function withDirLock<T>(dir: string, fn: () => Promise<T> | T): Promise<T> {
  ensurePrivateDir(dir);
  const lockfile = await import('proper-lockfile');
  const target = join(dir, 'breeze');
  const release = await lockfile.lock(target, {
    realpath: false,
    lockfilePath: join(dir, 'breeze.lock'),
    stale: 10_000,
    retries: { retries: 200, factor: 1.2, minTimeout: 5, maxTimeout: 100, randomize: true },
  });
  try {
    return await fn();
  } finally {
    await release().catch(() => {});
  }
}
