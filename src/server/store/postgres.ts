import { randomBytes } from 'node:crypto';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { preparedName } from './prepared.js';
import type { Database } from './schema.js';
import { BaseStore } from './store.js';

/** NOTIFY channel every instance sharing a database listens on for key changes. */
export const KEY_CHANGE_CHANNEL = 'breeze_key_change';
/** `application_name` of the dedicated LISTEN connection (visible in pg_stat_activity). */
export const LISTENER_APPLICATION_NAME = 'breeze-key-listener';

export interface PostgresStoreOptions {
  /** pool size per instance (default 10) */
  poolMax?: number;
  /**
   * Errors off the request path: a pooled idle connection dropped, the LISTEN connection lost (it
   * reconnects on its own), a NOTIFY that could not be sent. Default: one line on stderr.
   */
  onError?: (err: unknown, context: string) => void;
  /** Called each time the LISTEN connection is (re-)established after a loss; mostly for tests. */
  onListenerReconnect?: () => void;
}

const INT8_OID = 20;

/**
 * `bigint` results (`count(*)`, `sum(...)`) arrive from pg as strings; SQLite hands back numbers.
 * Counts in this schema stay far below 2^53, so both engines return numbers. Scoped to our pool:
 * pg's global type registry is left alone.
 */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === INT8_OID && format !== 'binary') return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format as 'text');
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/** `host:port/database` of a connection URL, for messages: never the user or the password. */
export function describeUrl(url: string): string {
  // by hand, not `new URL`: a socket URL (`postgres://user@/db?host=/run/postgresql`) is no valid
  // WHATWG URL, and a password with an unencoded `/`, `?` or `@` must not end up in the message
  const scheme = url.indexOf('://');
  if (scheme < 0) return 'the configured database URL';
  let rest = url.slice(scheme + 3);
  const at = rest.lastIndexOf('@');
  if (at >= 0) rest = rest.slice(at + 1);
  const m = /^([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?/.exec(rest);
  const socket = new URLSearchParams(m?.[3] ?? '').get('host');
  const where = m?.[1] || socket || 'localhost';
  const db = m?.[2] && m[2].length > 1 ? m[2] : '';
  return `${where}${db}`;
}

function defaultOnError(err: unknown, context: string): void {
  // never the URL: it may hold a password
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`${JSON.stringify({ level: 'warn', msg: `postgres: ${context}: ${message}` })}\n`);
}

/**
 * A dedicated connection running `LISTEN` (pooled connections cannot hold one: a pool hands them
 * out to other queries). When it drops, it reconnects with backoff (100 ms doubling to 5 s);
 * notifications sent while it was away are lost, which the verification cache's short TTL covers.
 */
class NotificationListener {
  private client: pg.Client | null = null;
  private stopped = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly channel: string,
    private readonly onPayload: (payload: string) => void,
    private readonly onError: (err: unknown, context: string) => void,
    private readonly onReconnect?: () => void,
  ) {}

  /** First connection; throws when the database cannot be reached. */
  start(): Promise<void> {
    return this.connect();
  }

  get connected(): boolean {
    return this.client !== null;
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.url,
      application_name: LISTENER_APPLICATION_NAME,
      // a half-open TCP connection would otherwise look alive forever and swallow notifications
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    client.on('notification', (msg) => {
      if (msg.channel === this.channel && msg.payload) this.onPayload(msg.payload);
    });
    client.on('error', (err) => {
      this.onError(err, 'key-change listener connection failed; reconnecting');
      this.lost(client);
    });
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
    } catch (err) {
      client.end().catch(() => {});
      throw err;
    }
    if (this.stopped) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
    this.attempt = 0;
  }

  private lost(client: pg.Client): void {
    if (this.client !== client) return; // not (yet) the live one, or already handled
    this.client = null;
    client.end().catch(() => {});
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.timer) return;
    const delay = Math.min(100 * 2 ** this.attempt, 5_000);
    this.attempt += 1;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect().then(
        () => {
          if (!this.stopped) this.onReconnect?.();
        },
        (err) => {
          this.onError(err, 'key-change listener could not reconnect; retrying');
          this.scheduleReconnect();
        },
      );
    }, delay);
    // a reconnect loop must not keep a process alive that is otherwise done
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => {});
  }
}

/**
 * The store on PostgreSQL: a pg pool behind Kysely (same repositories and migrations as SQLite),
 * plus LISTEN/NOTIFY so that a key disabled or deleted on one instance is dropped from every other
 * instance's verification cache at once.
 */
export class PostgresStore extends BaseStore {
  readonly engine = 'postgres' as const;
  /** tags our own notifications, which were already delivered locally */
  private readonly instanceId = randomBytes(9).toString('base64url');
  private listener: NotificationListener | null = null;

  constructor(
    db: Kysely<Database>,
    private readonly onError: (err: unknown, context: string) => void = defaultOnError,
  ) {
    super(db);
  }

  /** Starts listening for other instances' key changes. */
  async listen(url: string, onReconnect?: () => void): Promise<void> {
    const listener = new NotificationListener(
      url,
      KEY_CHANGE_CHANNEL,
      (payload) => this.receive(payload),
      this.onError,
      onReconnect,
    );
    await listener.start();
    this.listener = listener;
  }

  /** True while the LISTEN connection is up. */
  get listening(): boolean {
    return this.listener?.connected ?? false;
  }

  private receive(payload: string): void {
    const space = payload.indexOf(' ');
    if (space <= 0) return;
    if (payload.slice(0, space) === this.instanceId) return;
    try {
      this.emitKeyChange(payload.slice(space + 1));
    } catch (err) {
      // a throwing listener must not take the LISTEN connection (or the process) down with it
      this.onError(err, 'a key-change listener failed');
    }
  }

  /**
   * Local listeners first (synchronously), then every other instance via NOTIFY. Call it after the
   * change is committed (a NOTIFY sent earlier would let others re-read the old row). As the change
   * is already durable, a failed NOTIFY is reported, not thrown: the other instances' cache TTL
   * (500 ms) still bounds how long they may serve the key.
   */
  override async publishKeyChange(keyId: string): Promise<void> {
    this.emitKeyChange(keyId);
    try {
      await sql`select pg_notify(${KEY_CHANGE_CHANNEL}, ${`${this.instanceId} ${keyId}`})`.execute(this.db);
    } catch (err) {
      this.onError(err, 'could not notify other instances of a key change');
    }
  }

  override async close(): Promise<void> {
    await this.listener?.stop();
    this.listener = null;
    await super.close();
  }
}

/**
 * Makes a pooled connection send the texts registered with `keepPrepared` (store/prepared.ts) as
 * named statements: PostgreSQL then parses and plans each once on this connection. Kysely calls
 * `query(text, values)`; everything else goes through unchanged. A named statement is re-planned by
 * PostgreSQL itself when a table it uses changes.
 */
function sendRegisteredAsNamed(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  client.query = ((config: unknown, values?: unknown, callback?: unknown) => {
    const name = typeof config === 'string' && Array.isArray(values) ? preparedName(config) : undefined;
    return name === undefined
      ? query(config, values, callback)
      : query({ name, text: config, values }, callback);
  }) as typeof client.query;
}

/**
 * Opens a pooled PostgreSQL store, migrates it and starts listening for key changes. Several
 * instances may start at once on a fresh database: Kysely's migrator serialises them with an
 * advisory lock and each migration is applied once.
 */
export async function openPostgresStore(
  url: string,
  opts: PostgresStoreOptions = {},
): Promise<PostgresStore> {
  const onError = opts.onError ?? defaultOnError;
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolMax ?? 10,
    // a request should fail, not hang, when the database is unreachable
    connectionTimeoutMillis: 10_000,
    application_name: 'breeze',
    types,
  });
  // an idle pooled connection that dies emits 'error' on the pool; unhandled, it would crash the process
  pool.on('error', (err) => onError(err, 'idle pooled connection lost'));
  pool.on('connect', sendRegisteredAsNamed);
  const store = new PostgresStore(new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), onError);
  try {
    try {
      await sql`select 1`.execute(store.db);
    } catch (err) {
      throw new Error(`Cannot connect to PostgreSQL at ${describeUrl(url)}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    await store.migrate();
    await store.listen(url, opts.onListenerReconnect);
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  return store;
}
