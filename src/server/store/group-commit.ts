import { CompiledQuery, type Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { StoreTx } from './store.js';

/** At most this many transactions share one commit. */
export const GROUP_COMMIT_MAX = 64;

// IMMEDIATE: the write lock from the start. A group lives across a turn of the event loop; with a
// deferred BEGIN, another process committing between a member's read and its write would fail the
// write at once (SQLITE_BUSY_SNAPSHOT, which busy_timeout does not wait out)
const BEGIN = CompiledQuery.raw('begin immediate');
const COMMIT = CompiledQuery.raw('commit');
const ROLLBACK = CompiledQuery.raw('rollback');
// one name is enough: the transactions of a group run one after the other, each released before
// the next begins (and one text keeps one prepared statement)
const SAVEPOINT = CompiledQuery.raw('savepoint breeze_tx');
const RELEASE = CompiledQuery.raw('release breeze_tx');
const ROLLBACK_TO = CompiledQuery.raw('rollback to breeze_tx');

interface Member {
  fn: (tx: StoreTx) => Promise<unknown>;
  resolve(value: unknown): void;
  reject(err: unknown): void;
  value?: unknown;
}

interface Group {
  queue: Member[];
  /** members whose work succeeded: answered once the commit is durable */
  done: Member[];
  size: number;
  /** no more members: the commit is under way, or the group is full */
  closed: boolean;
}

/**
 * Group commit for SQLite: the transactions that arrive in one turn of the event loop (the requests
 * read from their sockets together) run right after it, one after the other inside ONE database
 * transaction, each after the first in a savepoint of its own, and are answered together after its
 * commit. A commit's cost is mostly the pages it writes to the WAL, and most pages a write touches
 * (the tails of tables and indexes whose keys grow with time: ids, the audit log) are the same for
 * every write, so under load a group writes them once instead of once per request. Alone (no load)
 * a transaction is its own group, with no savepoint, as before.
 *
 * What each caller sees is unchanged: its function runs with the database to itself (members never
 * interleave), its work commits or rolls back whole, and its promise settles only after its commit
 * (an acknowledged write survives a SIGKILL). A member that fails is rolled back to its savepoint
 * and does not affect the others; if SQLite itself ends the transaction (a full disk, an I/O
 * error), every member before it fails too: none is told it committed.
 *
 * A group runs within one turn of the event loop (unless a member itself waits on I/O): the write
 * lock is never held while the thread does other work, so another connection of this process,
 * whose wait for the lock blocks the thread, never waits on a group, and another process finds the
 * lock free between groups.
 */
export class GroupCommit {
  private open: Group | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly inTransaction: () => boolean,
    private readonly bind: (db: Kysely<Database>) => StoreTx,
    /** after each commit (the store's WAL checkpointer counts them) */
    private readonly onCommit: () => void = () => {},
  ) {}

  run<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const member: Member = { fn, resolve: resolve as (v: unknown) => void, reject };
      let group = this.open;
      if (group === undefined || group.closed) {
        group = { queue: [], done: [], size: 0, closed: false };
        this.open = group;
        // the transactions of this turn of the event loop (requests already read from their
        // sockets) join it; it runs right after, holding the write lock only while it runs
        const g = group;
        setImmediate(() => this.start(g));
      }
      group.queue.push(member);
      if (++group.size >= GROUP_COMMIT_MAX) group.closed = true;
    });
  }

  private start(group: Group): void {
    // the connection is SQLite's only one: a group waits here for the previous group's commit
    this.db
      .connection()
      .execute((conn) => this.runGroup(group, conn))
      .catch((err: unknown) => {
        // no connection, or BEGIN (or a rollback) failed: the members not run yet fail unrun
        group.closed = true;
        for (const m of [...group.done, ...group.queue.splice(0)]) m.reject(err);
      });
  }

  private async runGroup(group: Group, conn: Kysely<Database>): Promise<void> {
    try {
      await this.runGroupIn(group, conn);
    } finally {
      // never hand the connection back inside a transaction: a plain write after it would report
      // success and never be committed
      await this.endTransaction(conn);
    }
  }

  private async runGroupIn(group: Group, conn: Kysely<Database>): Promise<void> {
    const tx = this.bind(conn);
    await conn.executeQuery(BEGIN);
    for (;;) {
      const member = group.queue.shift();
      if (member === undefined) {
        // no waiting for more: the write lock is never held across a turn of the event loop (a
        // second connection of this process waiting for it would block the thread, and another
        // process would find it taken every time it looked)
        group.closed = true;
        if (this.open === group) this.open = undefined;
        break;
      }
      await this.runMember(group, member, tx, conn);
    }
    if (group.done.length === 0) return;
    try {
      await conn.executeQuery(COMMIT);
    } catch (err) {
      this.failDone(group, err);
      return;
    }
    this.onCommit();
    for (const m of group.done) m.resolve(m.value);
  }

  private async runMember(group: Group, member: Member, tx: StoreTx, conn: Kysely<Database>): Promise<void> {
    // the first member to succeed needs no savepoint: on failure, the whole transaction rolls back
    const savepoint = group.done.length > 0;
    let failure: unknown;
    try {
      if (savepoint) await conn.executeQuery(SAVEPOINT);
      member.value = await member.fn(tx);
      if (!this.inTransaction()) {
        // the function went on after SQLite ended the transaction (it caught the error): what it
        // ran since was committed statement by statement, and what came before is gone
        throw new Error('the database ended the transaction while the write was under way');
      }
      if (savepoint) await conn.executeQuery(RELEASE);
      group.done.push(member);
      return;
    } catch (err) {
      failure = err;
      member.reject(err);
    }
    if (savepoint && this.inTransaction()) {
      try {
        await conn.executeQuery(ROLLBACK_TO);
        await conn.executeQuery(RELEASE);
        return;
      } catch {
        // fall through: the transaction is not what the members before this one left
      }
    }
    // whatever the members before this one did is gone with the transaction: they fail too
    this.failDone(group, failure);
    await this.endTransaction(conn);
    await conn.executeQuery(BEGIN);
  }

  /** The members that succeeded so far lose their work with the transaction: they fail. */
  private failDone(group: Group, cause: unknown): void {
    // not the other caller's own error (its 409 is not theirs to answer): a server error
    const err = new Error('the database ended the transaction this write was part of', { cause });
    for (const m of group.done.splice(0)) m.reject(err);
  }

  /** Rolls back what is open; fails when it cannot (the connection must not be used inside it). */
  private async endTransaction(conn: Kysely<Database>): Promise<void> {
    for (let attempt = 0; attempt < 2 && this.inTransaction(); attempt++) {
      await conn.executeQuery(ROLLBACK).catch(() => {});
    }
    if (this.inTransaction()) throw new Error('SQLite could not roll back a transaction');
  }
}
