import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';

/** A store starts its checkpointer after this many commits (a CLI command's few writes never do). */
export const CHECKPOINTER_AFTER_COMMITS = 100;
/** How long the checkpointer lets commits gather before it checkpoints them. */
const GATHER_MS = 10;
/**
 * Writes outside a transaction (sessions, codes, `last_used_at`) do not count as commits here: the
 * thread also looks this often (a checkpoint with nothing to copy costs no I/O).
 */
const IDLE_CHECK_MS = 1000;
/**
 * The main connection's own checkpoint threshold while the thread runs (SQLite's default, 1,000
 * pages, otherwise): a safety net, reached only when the thread falls behind.
 */
export const FALLBACK_CHECKPOINT_PAGES = 4000;
const SQLITE_DEFAULT_CHECKPOINT_PAGES = 1000;
/** How long close() waits for the thread to finish a checkpoint under way. */
const STOP_WAIT_MS = 2000;

// the shared words: commits seen by the main thread, whether the thread sleeps waiting for one,
// and a stop request
const SEQ = 0;
const WAITING = 1;
const STOP = 2;

/**
 * The thread's code, CommonJS (a string rather than a module file: the same code runs from dist/
 * and from the TypeScript sources under test). It opens its own connection to the database and,
 * whenever commits have come in (and at least every IDLE_CHECK_MS), runs a PASSIVE checkpoint: it
 * copies committed pages from the WAL into the database and syncs both files, never blocking the
 * writer or a reader.
 */
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.driver);
const state = new Int32Array(workerData.state);
const pause = new Int32Array(new SharedArrayBuffer(4));
const db = new Database(workerData.file, { fileMustExist: true });
try {
  const checkpoint = db.prepare('pragma wal_checkpoint(PASSIVE)');
  parentPort.postMessage('ready');
  let seen = Atomics.load(state, ${SEQ});
  while (Atomics.load(state, ${STOP}) === 0) {
    Atomics.store(state, ${WAITING}, 1);
    const woken = Atomics.wait(state, ${SEQ}, seen, ${IDLE_CHECK_MS});
    Atomics.store(state, ${WAITING}, 0);
    if (Atomics.load(state, ${STOP}) !== 0) break;
    if (woken !== 'timed-out') Atomics.wait(pause, 0, 0, ${GATHER_MS});
    seen = Atomics.load(state, ${SEQ});
    try {
      checkpoint.get();
    } catch {
      // busy (another process checkpoints): the next commit brings another try
    }
  }
} finally {
  db.close();
}
`;

/**
 * Checkpoints a SQLite database's WAL on a thread of its own.
 *
 * In WAL mode a commit only appends to the WAL; the pages go to the database file in a checkpoint,
 * which SQLite runs on the committing connection once the WAL holds 1,000 pages, and which syncs
 * both files to disk (fsync). On the server's one thread, that wait came out of every request in
 * flight. Here a second connection, on another thread, copies and syncs the pages shortly after
 * commits come in (PASSIVE: it takes no lock a writer or a reader waits on).
 *
 * A PASSIVE checkpoint under steady writes never catches the WAL's end (new commits land while it
 * runs), and only a WAL checkpointed to its end starts over from its beginning. So the main
 * connection keeps its own automatic checkpoint, at FALLBACK_CHECKPOINT_PAGES while the thread
 * runs: it then finds nearly every page already copied and synced, and brings the WAL back to its
 * start at a fraction of the cost. If the thread fails or is gone, SQLite's default threshold is
 * back. Durability is unchanged: commits are as durable as before, checkpoints are SQLite's own.
 */
export class WalCheckpointer {
  private readonly state = new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));
  private commits = 0;
  private worker: Worker | undefined;
  private running = false;
  private stopped = false;

  constructor(private readonly sqlite: Database.Database) {}

  /** Called after each commit of the store's connection. */
  committed(): void {
    if (this.running) {
      Atomics.add(this.state, SEQ, 1);
      if (Atomics.load(this.state, WAITING) === 1) Atomics.notify(this.state, SEQ);
      return;
    }
    if (this.worker === undefined && !this.stopped && ++this.commits >= CHECKPOINTER_AFTER_COMMITS) {
      this.start();
    }
  }

  /** Whether the thread is up and checkpointing (tests). */
  get active(): boolean {
    return this.running;
  }

  /** Whether the thread exists at all, up or on its way out (tests). */
  get hasThread(): boolean {
    return this.worker !== undefined;
  }

  private start(): void {
    let worker: Worker;
    try {
      worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: {
          file: this.sqlite.name,
          state: this.state.buffer,
          driver: createRequire(import.meta.url).resolve('better-sqlite3'),
        },
        // no flags of the server's (--cpu-prof, inspector ports) in a thread that only checkpoints
        execArgv: [],
        stdout: true,
        stderr: true,
      });
    } catch {
      this.stopped = true;
      return;
    }
    this.worker = worker;
    // the thread never keeps the process alive: SQLite's own checkpoints are the fallback
    worker.unref();
    worker.once('message', () => {
      if (this.stopped || !this.sqlite.open) return;
      this.running = true;
      this.threshold(FALLBACK_CHECKPOINT_PAGES);
    });
    // a failure (the file cannot be opened, the driver will not load) leaves SQLite's checkpoints
    worker.on('error', () => {});
    worker.once('exit', () => {
      this.running = false;
      this.worker = undefined;
      this.stopped = true;
      this.threshold(SQLITE_DEFAULT_CHECKPOINT_PAGES);
    });
  }

  /** The main connection's own checkpoint threshold (from an event handler: it must not throw). */
  private threshold(pages: number): void {
    try {
      if (this.sqlite.open) this.sqlite.pragma(`wal_autocheckpoint = ${pages}`);
    } catch {
      // the connection is busy or closing: its threshold stays as it was
    }
  }

  /** Stops the thread (waiting for a checkpoint under way to end) before the store closes. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.running = false;
    const worker = this.worker;
    if (worker === undefined) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    Atomics.store(this.state, STOP, 1);
    // a wait about to begin finds SEQ changed and returns at once (a notify before it would be lost)
    Atomics.add(this.state, SEQ, 1);
    Atomics.notify(this.state, SEQ);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), STOP_WAIT_MS);
    });
    if ((await Promise.race([exited, late])) === 'late') await worker.terminate();
    clearTimeout(timer);
  }
}
