import { CompiledQuery, type Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { StoreTx } from './store.js';

/** At most this many transactions share one commit. */
export const GROUP_COMMIT_MAX = 64;

const BEGIN = CompiledQuery.raw('begin');
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
 * Group commit for SQLite: the transactions that arrive while one is running (and during the same
 * turn of the event loop) run one after the other inside ONE database transaction, each in a
 * savepoint of its own, and are answered together after its commit. A commit's cost is mostly the
 * pages it writes to the WAL, and most pages a write touches (the tails of tables and indexes whose
 * keys grow with time: ids, the audit log) are the same for every write, so under load a group
 * writes them once instead of once per request. Alone (no load) a transaction is its own group, with
 * no savepoint, exactly as before.
 *
 * What each caller sees is unchanged: its function runs with the database to itself (members never
 * interleave), its work commits or rolls back whole, and its promise settles only after its commit
 * (an acknowledged write survives a SIGKILL). A member that fails is rolled back to its savepoint
 * and does not affect the others; if SQLite itself ends the transaction (a full disk, an I/O
 * error), every member of the group fails with that error: none is told it committed.
 */
export class GroupCommit {
  private open: Group | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly inTransaction: () => boolean,
    private readonly bind: (db: Kysely<Database>) => StoreTx,
  ) {}

  run<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const member: Member = { fn, resolve: resolve as (v: unknown) => void, reject };
      let group = this.open;
      if (group === undefined || group.closed) {
        group = { queue: [], done: [], size: 0, closed: false };
        this.open = group;
        this.start(group);
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
        // the connection could not be had, or BEGIN failed: nobody's work ran
        group.closed = true;
        for (const m of [...group.done, ...group.queue.splice(0)]) m.reject(err);
      });
  }

  private async runGroup(group: Group, conn: Kysely<Database>): Promise<void> {
    const tx = this.bind(conn);
    await conn.executeQuery(BEGIN);
    for (;;) {
      const member = group.queue.shift();
      if (member === undefined) {
        // let the requests already read from their sockets join before the commit
        if (!group.closed) await new Promise<void>((r) => setImmediate(r));
        if (group.queue.length > 0) continue;
        group.closed = true;
        if (this.open === group) this.open = undefined;
        break;
      }
      await this.runMember(group, member, tx, conn);
    }
    if (group.done.length === 0) {
      if (this.inTransaction()) await conn.executeQuery(ROLLBACK);
      return;
    }
    try {
      await conn.executeQuery(COMMIT);
    } catch (err) {
      if (this.inTransaction()) await conn.executeQuery(ROLLBACK).catch(() => {});
      for (const m of group.done) m.reject(err);
      return;
    }
    for (const m of group.done) m.resolve(m.value);
  }

  private async runMember(group: Group, member: Member, tx: StoreTx, conn: Kysely<Database>): Promise<void> {
    // the first member to succeed needs no savepoint: on failure, the whole transaction rolls back
    const savepoint = group.done.length > 0;
    let failure: unknown;
    try {
      if (savepoint) await conn.executeQuery(SAVEPOINT);
      member.value = await member.fn(tx);
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
    if (this.inTransaction()) await conn.executeQuery(ROLLBACK).catch(() => {});
    // whatever the members before this one did is gone with the transaction: they fail too
    for (const m of group.done.splice(0)) m.reject(failure);
    await conn.executeQuery(BEGIN);
  }
}
