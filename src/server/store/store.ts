import { type Kysely, Migrator } from 'kysely';
import { AuditRepo } from './audit.js';
import { InvitationsRepo } from './invitations.js';
import { KeyEventsRepo } from './key-events.js';
import { KeysRepo } from './keys.js';
import { migrationProvider } from './migrations.js';
import { OidcRepo } from './oidc.js';
import { OrgsRepo } from './orgs.js';
import type { DirectSql } from './prepared.js';
import type { Database, Engine } from './schema.js';
import { UsageRepo } from './usage.js';
import { UsersRepo } from './users.js';

/**
 * The server's storage. One implementation per engine, all through the same Kysely query layer and
 * migrations; repositories hold the queries and are engine-agnostic.
 */
export interface Store {
  readonly engine: Engine;
  readonly db: Kysely<Database>;
  readonly users: UsersRepo;
  readonly keys: KeysRepo;
  readonly orgs: OrgsRepo;
  readonly invitations: InvitationsRepo;
  readonly audit: AuditRepo;
  readonly keyEvents: KeyEventsRepo;
  readonly usage: UsageRepo;
  readonly oidc: OidcRepo;
  /** Runs `fn` in one database transaction, with repositories bound to it. */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  /**
   * Tells every server instance sharing this database that a key changed (disabled, deleted,
   * rotated), so caches drop it at once. Within one process the listeners run synchronously.
   */
  publishKeyChange(keyId: string): Promise<void>;
  onKeyChange(listener: (keyId: string) => void): () => void;
  close(): Promise<void>;
}

export interface StoreTx {
  readonly db: Kysely<Database>;
  readonly users: UsersRepo;
  readonly keys: KeysRepo;
  readonly orgs: OrgsRepo;
  readonly invitations: InvitationsRepo;
  readonly audit: AuditRepo;
  readonly keyEvents: KeyEventsRepo;
  readonly usage: UsageRepo;
  readonly oidc: OidcRepo;
}

/** Shared part of every engine's store. */
export abstract class BaseStore implements Store {
  abstract readonly engine: Engine;
  readonly users: UsersRepo;
  readonly keys: KeysRepo;
  readonly orgs: OrgsRepo;
  readonly invitations: InvitationsRepo;
  readonly audit: AuditRepo;
  readonly keyEvents: KeyEventsRepo;
  readonly usage: UsageRepo;
  readonly oidc: OidcRepo;
  private readonly listeners = new Set<(keyId: string) => void>();

  constructor(readonly db: Kysely<Database>) {
    this.users = new UsersRepo(db, () => this.engine);
    this.keys = new KeysRepo(db, () => this.engine);
    this.orgs = new OrgsRepo(db, () => this.engine);
    this.invitations = new InvitationsRepo(db);
    this.audit = new AuditRepo(db, () => this.engine);
    this.keyEvents = new KeyEventsRepo(db, () => this.engine);
    this.usage = new UsageRepo(db);
    this.oidc = new OidcRepo(db, () => this.engine);
  }

  async migrate(): Promise<void> {
    const migrator = new Migrator({ db: this.db, provider: migrationProvider });
    const { error, results } = await migrator.migrateToLatest();
    if (error) {
      const failed = results?.find((r) => r.status === 'Error');
      throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${String(error)}`, {
        cause: error,
      });
    }
  }

  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.db.transaction().execute((trx) => fn(this.boundTo(trx)));
  }

  /** The repositories over `db`: a transaction, or one connection holding a transaction open. */
  protected boundTo(db: Kysely<Database>): StoreTx {
    return {
      db,
      users: new UsersRepo(db, () => this.engine),
      keys: new KeysRepo(db, () => this.engine),
      orgs: new OrgsRepo(db, () => this.engine),
      invitations: new InvitationsRepo(db),
      audit: new AuditRepo(db, () => this.engine, this.directInTransaction()),
      keyEvents: new KeyEventsRepo(db, () => this.engine),
      usage: new UsageRepo(db),
      oidc: new OidcRepo(db, () => this.engine),
    };
  }

  /** What repositories bound to a transaction may run directly (SQLite: see DirectSql). */
  protected directInTransaction(): DirectSql | undefined {
    return undefined;
  }

  async publishKeyChange(keyId: string): Promise<void> {
    this.emitKeyChange(keyId);
  }

  protected emitKeyChange(keyId: string): void {
    for (const l of this.listeners) l(keyId);
  }

  onKeyChange(listener: (keyId: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}
