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
/**
 * A local file that exists but cannot be used. Its message names the file and never quotes its
 * content (a credentials file holds keys).
 */
export class CorruptFileError extends Error {
  override name = 'CorruptFileError';
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file} ${problem}.`);
  }
}

/**
 * Reads a JSON file: undefined when it does not exist; CorruptFileError when it is not JSON or
 * `isValid` refuses its structure, so callers never overwrite a damaged file as if it were empty.
 */
export function readJsonFile<T>(
  file: string,
  isValid: (value: unknown) => boolean = () => true,
): T | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CorruptFileError(file, 'is not valid JSON');
  }
  if (!isValid(value)) throw new CorruptFileError(file, 'does not have the expected structure');
  return value as T;
}

/** `isValid` for files shaped `{ [field]: { ...record } }`. */
export function hasRecordField(field: string): (value: unknown) => boolean {
  return (value) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
    const inner = (value as Record<string, unknown>)[field];
    return typeof inner === 'object' && inner !== null && !Array.isArray(inner);
  };
}

/**
 * Writes `file` atomically: a temporary file in the same directory (created with `mode`), fsync,
 * then rename over the target. Synchronous on purpose: no signal handler can run in the middle, and
 * a SIGKILL leaves either the old file or the new one (plus, at worst, a stray temporary file).
 */
export function writeFileAtomicSync(file: string, data: string, mode = 0o600): void {
  ensurePrivateDir(dirname(file));
  // node:crypto loaded on first write only: `token`, `env` and `--version` never pay for it
  const { randomBytes } = process.getBuiltinModule('node:crypto');
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
