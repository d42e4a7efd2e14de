import { type Kysely, type Migration, type MigrationProvider, PostgresAdapter, sql } from 'kysely';
import { ulid } from '../../core/ids.js';

/**
 * Versioned migrations, in code so they ship inside the package. Kysely's migrator records them in
 * `kysely_migration` and takes a lock (an advisory lock on PostgreSQL), so several server instances
 * starting at once apply each migration exactly once.
 */
const migrations: Record<string, Migration> = {
  '001_initial': {
    // biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the current schema type
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('email', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('prefix', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull().unique())
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('last_used_at', 'text')
        .addColumn('disabled_at', 'text')
        .addColumn('rotated_from', 'text')
        .addColumn('created_via', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('api_keys_user_id').on('api_keys').columns(['user_id', 'id']).execute();

      await db.schema
        .createTable('browser_sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('email_codes')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('email', 'text', (c) => c.notNull())
        .addColumn('purpose', 'text', (c) => c.notNull())
        .addColumn('code_hash', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        .execute();

      await db.schema
        .createTable('cli_logins')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_code_hash', 'text', (c) => c.notNull().unique())
        .addColumn('code_challenge', 'text', (c) => c.notNull())
        .addColumn('client_name', 'text', (c) => c.notNull())
        .addColumn('hostname', 'text', (c) => c.notNull())
        .addColumn('key_name', 'text')
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('redirect_uri', 'text')
        .addColumn('state', 'text')
        .addColumn('requester_ip', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text')
        .addColumn('approval_code_hash', 'text')
        .addColumn('interval_s', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('last_poll_at', 'text')
        .addColumn('decided_at', 'text')
        .execute();

      await db.schema
        .createTable('signing_keys')
        .addColumn('kid', 'text', (c) => c.primaryKey())
        .addColumn('alg', 'text', (c) => c.notNull())
        .addColumn('public_jwk', 'text', (c) => c.notNull())
        .addColumn('private_jwk', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('retired_at', 'text')
        .execute();
    },
  },
  '002_api_keys_rotated_at': {
    // biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the current schema type
    async up(db: Kysely<any>) {
      // set once, by the rotation that minted the key's successor: a rotation is a conditional
      // update of this column, so of concurrent rotations exactly one wins
      await db.schema.alterTable('api_keys').addColumn('rotated_at', 'text').execute();
      await sql`UPDATE api_keys SET rotated_at = (
          SELECT MIN(s.created_at) FROM api_keys s WHERE s.rotated_from = api_keys.id)
        WHERE EXISTS (SELECT 1 FROM api_keys s WHERE s.rotated_from = api_keys.id)`.execute(db);
    },
  },
  '003_teams': {
    // biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the current schema type
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('organizations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('personal_user_id', 'text', (c) => c.unique().references('users.id').onDelete('cascade'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('memberships')
        .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('joined_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('memberships_pk', ['org_id', 'user_id'])
        .execute();
      await db.schema.createIndex('memberships_user_id').on('memberships').columns(['user_id']).execute();
      await db.schema
        .createTable('projects')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('projects_org_name', ['org_id', 'name'])
        .execute();
      await db.schema
        .createTable('invitations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
        .addColumn('email', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('code_hash', 'text', (c) => c.notNull())
        .addColumn('invited_by', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('accepted_at', 'text')
        .execute();
      await db.schema.createIndex('invitations_org_id').on('invitations').columns(['org_id']).execute();

      // nullable: SQLite cannot add a NOT NULL column to a table with rows; the code writes both always
      await db.schema
        .alterTable('api_keys')
        .addColumn('org_id', 'text', (c) => c.references('organizations.id'))
        .execute();
      await db.schema
        .alterTable('api_keys')
        .addColumn('project_id', 'text', (c) => c.references('projects.id'))
        .execute();
      await db.schema.alterTable('cli_logins').addColumn('project_id', 'text').execute();

      // Every existing user gets a personal organization (owner) with project `default`, in batches
      // (a row per statement would take minutes on a large database).
      const users: { id: string; email: string; created_at: string }[] = await db
        .selectFrom('users')
        .select(['id', 'email', 'created_at'])
        .orderBy('id')
        .execute();
      const now = new Date().toISOString();
      for (let i = 0; i < users.length; i += 500) {
        const batch = users.slice(i, i + 500).map((u) => {
          const t = Date.parse(u.created_at);
          const ms = Number.isNaN(t) ? Date.now() : t;
          return { user: u, orgId: `org_${ulid(ms)}`, projectId: `proj_${ulid(ms)}` };
        });
        await db
          .insertInto('organizations')
          .values(
            batch.map((b) => ({
              id: b.orgId,
              name: `${b.user.email}'s organization`,
              personal_user_id: b.user.id,
              created_at: b.user.created_at,
            })),
          )
          .execute();
        await db
          .insertInto('memberships')
          .values(batch.map((b) => ({ org_id: b.orgId, user_id: b.user.id, role: 'owner', joined_at: now })))
          .execute();
        await db
          .insertInto('projects')
          .values(
            batch.map((b) => ({
              id: b.projectId,
              org_id: b.orgId,
              name: 'default',
              created_at: b.user.created_at,
            })),
          )
          .execute();
      }
      // ...and every existing key lands in it (same hash: no key is invalidated)
      await sql`UPDATE api_keys SET
          org_id = (SELECT o.id FROM organizations o WHERE o.personal_user_id = api_keys.user_id),
          project_id = (SELECT p.id FROM projects p JOIN organizations o ON o.id = p.org_id
                        WHERE o.personal_user_id = api_keys.user_id AND p.name = 'default')
        WHERE org_id IS NULL`.execute(db);
      await db.schema.createIndex('api_keys_org_id').on('api_keys').columns(['org_id', 'id']).execute();
      await db.schema
        .createIndex('api_keys_project_id')
        .on('api_keys')
        .columns(['project_id', 'id'])
        .execute();
    },
  },
  '004_key_events': {
    // biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the current schema type
    async up(db: Kysely<any>) {
      const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
      await db.schema
        .createTable('key_events')
        .addColumn('id', postgres ? 'bigserial' : 'integer', (c) =>
          postgres ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('org_id', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('dedupe', 'text', (c) => c.unique())
        .execute();
      await db.schema.createIndex('key_events_org_id').on('key_events').columns(['org_id', 'id']).execute();
      await db.schema.createIndex('key_events_created_at').on('key_events').columns(['created_at']).execute();
      // the expiry watcher asks "which keys expired since my last look" several times a second
      await db.schema.createIndex('api_keys_expires_at').on('api_keys').columns(['expires_at']).execute();
      await db.schema
        .createTable('key_usage')
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('hour', 'text', (c) => c.notNull())
        .addColumn('requests', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('rejected', 'bigint', (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('key_usage_pk', ['key_id', 'hour'])
        .execute();
    },
  },
  '005_audit': {
    // biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the current schema type
    async up(db: Kysely<any>) {
      // no foreign keys: the log outlives what it names (a deleted key, a removed member)
      await db.schema
        .createTable('audit_events')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('org_id', 'text', (c) => c.notNull())
        .addColumn('project_id', 'text')
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('actor_type', 'text', (c) => c.notNull())
        .addColumn('actor_id', 'text', (c) => c.notNull())
        .addColumn('actor_email', 'text')
        .addColumn('actor_key_id', 'text')
        .addColumn('target_type', 'text', (c) => c.notNull())
        .addColumn('target_id', 'text', (c) => c.notNull())
        .addColumn('target_owner_id', 'text')
        .addColumn('ip', 'text')
        .addColumn('user_agent', 'text')
        .addColumn('request_id', 'text')
        .addColumn('details', 'text', (c) => c.notNull())
        .execute();
      // listing is by organization, newest first; pruning goes by the primary key (ids sort by time)
      await db.schema
        .createIndex('audit_events_org_id')
        .on('audit_events')
        .columns(['org_id', 'id'])
        .execute();
    },
  },
  '006_webhooks': {
    // biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the current schema type
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('webhooks')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('events', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('webhooks_org_id').on('webhooks').columns(['org_id', 'id']).execute();
      await db.schema
        .createTable('webhook_deliveries')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('webhook_id', 'text', (c) => c.notNull().references('webhooks.id').onDelete('cascade'))
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('event_type', 'text', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('last_status_code', 'integer')
        .addColumn('last_error', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('next_attempt_at', 'text')
        .addColumn('lease_until', 'text')
        .addColumn('delivered_at', 'text')
        .execute();
      await db.schema
        .createIndex('webhook_deliveries_webhook_id')
        .on('webhook_deliveries')
        .columns(['webhook_id', 'id'])
        .execute();
      // the worker's scan: pending rows by due time
      await db.schema
        .createIndex('webhook_deliveries_due')
        .on('webhook_deliveries')
        .columns(['status', 'next_attempt_at'])
        .execute();
      await db.schema
        .createTable('webhook_expiry_notices')
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('threshold', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('webhook_expiry_notices_pk', ['key_id', 'threshold'])
        .execute();
    },
  },
  '007_oidc': {
    // biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the current schema type
    async up(db: Kysely<any>) {
      // CI identity (PLATFORM.md): trust policies, and the OIDC tokens already exchanged (single use)
      await db.schema
        .createTable('oidc_trusts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('org_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
        // a trust mints keys into its project: deleting the project deletes its trusts
        .addColumn('project_id', 'text', (c) => c.notNull().references('projects.id').onDelete('cascade'))
        .addColumn('issuer', 'text', (c) => c.notNull())
        .addColumn('audience', 'text', (c) => c.notNull())
        .addColumn('claims', 'text', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('ttl_s', 'integer', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('oidc_trusts_org_id').on('oidc_trusts').columns(['org_id', 'id']).execute();
      await db.schema.createIndex('oidc_trusts_issuer').on('oidc_trusts').columns(['issuer']).execute();
      await db.schema
        .createTable('oidc_token_uses')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('oidc_token_uses_expires_at')
        .on('oidc_token_uses')
        .columns(['expires_at'])
        .execute();
    },
  },
  '008_leaks': {
    // biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the current schema type
    async up(db: Kysely<any>) {
      // what a leak report does to a live key of the organization (PLATFORM.md "Leak reports")
      await db.schema
        .alterTable('organizations')
        .addColumn('leak_policy', 'text', (c) => c.notNull().defaultTo('disable'))
        .execute();
    },
  },
  '009_audit_by_org': {
    // biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the current schema type
    async up(db: Kysely<any>) {
      // SQLite only: the audit log becomes one B-tree, clustered on (org_id, id) — a table WITHOUT
      // ROWID — instead of a rowid table, its primary-key index and the (org_id, id) index. Every
      // event then writes one tree instead of three (about a third less work per event), and a
      // listing, always one organization's newest first, reads the rows in place. PostgreSQL keeps
      // its table: a heap plus those indexes costs it little, and a rebuild would lock the log.
      if (db.getExecutor().adapter instanceof PostgresAdapter) return;
      await db.schema
        .createTable('audit_events_by_org')
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('org_id', 'text', (c) => c.notNull())
        .addColumn('project_id', 'text')
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('actor_type', 'text', (c) => c.notNull())
        .addColumn('actor_id', 'text', (c) => c.notNull())
        .addColumn('actor_email', 'text')
        .addColumn('actor_key_id', 'text')
        .addColumn('target_type', 'text', (c) => c.notNull())
        .addColumn('target_id', 'text', (c) => c.notNull())
        .addColumn('target_owner_id', 'text')
        .addColumn('ip', 'text')
        .addColumn('user_agent', 'text')
        .addColumn('request_id', 'text')
        .addColumn('details', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('audit_events_pk', ['org_id', 'id'])
        .modifyEnd(sql`without rowid`)
        .execute();
      await sql`insert into audit_events_by_org select id, at, org_id, project_id, action, actor_type, actor_id, actor_email, actor_key_id, target_type, target_id, target_owner_id, ip, user_agent, request_id, details from audit_events`.execute(
        db,
      );
      await db.schema.dropTable('audit_events').execute();
      await db.schema.alterTable('audit_events_by_org').renameTo('audit_events').execute();
    },
  },
  '010_used_form_tokens': {
    // biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on the current schema type
    async up(db: Kysely<any>) {
      // the dashboard's one-time form tokens already used (see Sessions.useFormToken): in the
      // database, so a form sent again to another instance behind a load balancer is still refused
      await db.schema
        .createTable('used_form_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('used_form_tokens_expires_at')
        .on('used_form_tokens')
        .columns(['expires_at'])
        .execute();
    },
  },
};

/** Names of the migrations, oldest first (tests build databases as older versions left them). */
export const MIGRATION_NAMES = Object.keys(migrations);

/** A provider of only the migrations up to and including `last` (tests: a database of an older release). */
export function migrationsUpTo(last: string): MigrationProvider {
  const names = MIGRATION_NAMES.slice(0, MIGRATION_NAMES.indexOf(last) + 1);
  return {
    async getMigrations() {
      return Object.fromEntries(names.map((n) => [n, migrations[n] as Migration]));
    },
  };
}

export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return migrations;
  },
};
