import type { Generated } from 'kysely';

/** The database engine behind a store. */
export type Engine = 'sqlite' | 'postgres';

/**
 * Database schema shared by SQLite and PostgreSQL. Timestamps are RFC 3339 UTC strings
 * (`Date#toISOString`), which sort correctly as text on both engines. Secrets never appear here:
 * keys, codes and session tokens are stored as hashes only.
 */
export interface Database {
  users: UsersTable;
  api_keys: ApiKeysTable;
  browser_sessions: BrowserSessionsTable;
  email_codes: EmailCodesTable;
  cli_logins: CliLoginsTable;
  signing_keys: SigningKeysTable;
  organizations: OrganizationsTable;
  memberships: MembershipsTable;
  projects: ProjectsTable;
  invitations: InvitationsTable;
  audit_events: AuditEventsTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_expiry_notices: WebhookExpiryNoticesTable;
  key_events: KeyEventsTable;
  key_usage: KeyUsageTable;
  oidc_trusts: OidcTrustsTable;
  oidc_token_uses: OidcTokenUsesTable;
  used_form_tokens: UsedFormTokensTable;
}

export interface UsersTable {
  id: string;
  email: string;
  created_at: string;
}

export interface ApiKeysTable {
  id: string;
  /** the member who created the key (the API's `created_by`) */
  user_id: string;
  /**
   * The key's organization and project. Nullable in the table only because SQLite cannot add a NOT
   * NULL column to an existing table; every key is written with both, and migration 003 filled in
   * the keys that existed before organizations. A key without them cannot authenticate.
   */
  org_id: string | null;
  project_id: string | null;
  name: string;
  prefix: string;
  hash: string;
  /** space-separated scopes, canonical order */
  scopes: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  disabled_at: string | null;
  rotated_from: string | null;
  /** when this key was rotated (its successor has `rotated_from` = its id); a key rotates once */
  rotated_at: string | null;
  created_via: string;
}

export interface BrowserSessionsTable {
  id: string;
  token_hash: string;
  user_id: string;
  created_at: string;
  expires_at: string;
}

export interface EmailCodesTable {
  id: string;
  email: string;
  /** 'api_key' | 'jwt' | 'browser' */
  purpose: string;
  code_hash: string;
  attempts: Generated<number>;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

export interface CliLoginsTable {
  id: string;
  user_code_hash: string;
  code_challenge: string;
  client_name: string;
  hostname: string;
  key_name: string | null;
  scopes: string;
  redirect_uri: string | null;
  state: string | null;
  requester_ip: string;
  /** 'pending' | 'approved' | 'denied' | 'exchanged' */
  status: string;
  user_id: string | null;
  approval_code_hash: string | null;
  interval_s: number;
  created_at: string;
  expires_at: string;
  last_poll_at: string | null;
  decided_at: string | null;
  /** the project the approver picked for the key (null: the personal organization's `default`) */
  project_id: string | null;
}

export interface SigningKeysTable {
  kid: string;
  alg: string;
  public_jwk: string;
  private_jwk: string;
  created_at: string;
  retired_at: string | null;
}

export interface OrganizationsTable {
  id: string;
  name: string;
  /** set on a user's personal organization (unique), null on every other */
  personal_user_id: string | null;
  created_at: string;
  /** 'disable' (default) | 'notify': what a leak report does to a live key (migration 008) */
  leak_policy?: string;
}

export interface MembershipsTable {
  org_id: string;
  user_id: string;
  /** 'owner' | 'admin' | 'member' | 'viewer' */
  role: string;
  joined_at: string;
}

export interface ProjectsTable {
  id: string;
  org_id: string;
  name: string;
  created_at: string;
}

export interface InvitationsTable {
  id: string;
  org_id: string;
  /** normalised (trimmed, lower-cased) */
  email: string;
  role: string;
  code_hash: string;
  invited_by: string;
  attempts: Generated<number>;
  created_at: string;
  expires_at: string;
  accepted_at: string | null;
}

/**
 * The audit log (append-only: rows are inserted, and deleted only by the retention pruner). Written
 * in the transaction of the change it records. `details` is JSON text without any secret.
 */
export interface AuditEventsTable {
  /** `evt_` + ULID: sorts by time, so "newest first" is an index scan */
  id: string;
  at: string;
  org_id: string;
  project_id: string | null;
  action: string;
  /** 'user' | 'key' | 'system' */
  actor_type: string;
  /** the acting user (for a key: its creator); 'system' for the server itself */
  actor_id: string;
  actor_email: string | null;
  actor_key_id: string | null;
  target_type: string;
  target_id: string;
  /** the user who owns the target (a key's creator, the member concerned): they may read the event */
  target_owner_id: string | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  details: string;
}

export interface WebhooksTable {
  id: string;
  org_id: string;
  url: string;
  /** space-separated event names, or `*` */
  events: string;
  created_by: string;
  created_at: string;
}

export interface WebhookDeliveriesTable {
  id: string;
  webhook_id: string;
  /** the body's `id` (`evt_…`): the same for every attempt, so receivers can drop duplicates */
  event_id: string;
  event_type: string;
  /** the raw JSON body sent (signed afresh on each attempt) */
  body: string;
  /** 'pending' | 'delivered' | 'failed' */
  status: string;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  created_at: string;
  next_attempt_at: string | null;
  /** a worker that claimed the row owns it until then (several instances share the table) */
  lease_until: string | null;
  delivered_at: string | null;
}

/** `key.expiring` events already sent: one row per key and threshold (`7d`, `1d`). */
export interface WebhookExpiryNoticesTable {
  key_id: string;
  threshold: string;
  created_at: string;
}

/**
 * Revocation events of `GET /v1/keys/events`, written in the same transaction as the change. `id`
 * grows monotonically in commit order (writers take a lock first on PostgreSQL; SQLite serialises
 * them), so a stream resumes after `Last-Event-ID` without a gap.
 */
export interface KeyEventsTable {
  id: Generated<number>;
  org_id: string;
  key_id: string;
  /** 'key.revoked' */
  type: string;
  /** disabled | deleted | narrowed | expired | member_removed | role_changed */
  reason: string;
  created_at: string;
  /** set for events several instances may detect at once (an expiry): one row wins */
  dedupe: string | null;
}

/** Per key, per hour (`hour`: RFC 3339 of the hour's start): counts summed by additive upserts. */
export interface KeyUsageTable {
  key_id: string;
  hour: string;
  requests: number;
  rejected: number;
}

/** An organization's trust in an OIDC issuer (PLATFORM.md "CI identity"). */
export interface OidcTrustsTable {
  id: string;
  org_id: string;
  project_id: string;
  issuer: string;
  audience: string;
  /** JSON object: claim name -> exact value or `*` glob */
  claims: string;
  /** space-separated scopes, canonical order */
  scopes: string;
  ttl_s: number;
  /** the member who created the trust: the keys it mints are theirs */
  created_by: string;
  created_at: string;
}

/** OIDC tokens already exchanged, kept until they expire: a token is accepted once. */
export interface OidcTokenUsesTable {
  /** SHA-256 (hex) of the token's issuer and `jti`: never the token */
  id: string;
  expires_at: string;
}

export interface UsedFormTokensTable {
  /** a keyed hash of the session's id and the form's token: never the token itself */
  id: string;
  /** kept until then (the longest the session could still send the form) */
  expires_at: string;
}
