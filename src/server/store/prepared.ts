/**
 * SQL texts that PostgreSQL keeps prepared, by name, on each pooled connection (store/postgres.ts):
 * parsed and planned once per connection instead of at every execution. Only for statements on a
 * hot path whose text is always the same and whose plan does not depend on their parameters (an
 * INSERT … VALUES): a repository registers the text it builds. Kysely sends every query unnamed,
 * and for the audit insert (a 31-parameter statement when the key's INSERT comes with it) parsing
 * and planning cost PostgreSQL more than executing it.
 *
 * A name is never reused for another text (pg refuses that); past MAX_PREPARED texts, further ones
 * simply go unnamed.
 */
const MAX_PREPARED = 64;
const names = new Map<string, string>();

/** Asks for `text` to be kept prepared (a no-op on SQLite, whose store keeps every statement). */
export function keepPrepared(text: string): void {
  if (!names.has(text) && names.size < MAX_PREPARED) names.set(text, `breeze_${names.size + 1}`);
}

/** The statement name of a registered text. */
export function preparedName(text: string): string | undefined {
  return names.get(text);
}

/**
 * SQLite only: runs a statement at once on the store's one connection, synchronously, without
 * Kysely's layers (a query through Kysely costs a few microseconds of promises and plugins over
 * SQLite's own work). Only repositories bound to a transaction get it (see boundTo): the
 * transaction holds the connection, so nothing else runs on it in between.
 */
export interface DirectSql {
  run(text: string, params: readonly unknown[]): void;
  get<R>(text: string, params: readonly unknown[]): R | undefined;
}
