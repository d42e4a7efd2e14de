import type { Kysely } from 'kysely';
import type { Database, Engine, OidcTrustsTable } from './schema.js';
import { useOnce } from './use-once.js';

export type OidcTrustRow = OidcTrustsTable;

/** Trust policies of organizations and the single-use record of exchanged OIDC tokens. */
export class OidcRepo {
  constructor(
    private readonly db: Kysely<Database>,
    /** row locks are PostgreSQL's (SQLite has none: its write transaction excludes every other) */
    private readonly engine: () => Engine,
  ) {}

  async insertTrust(row: OidcTrustRow): Promise<void> {
    await this.db.insertInto('oidc_trusts').values(row).execute();
  }

  /**
   * A trust. `lock` (inside the exchange's transaction; PostgreSQL only, SQLite's write transaction
   * excludes every other): FOR KEY SHARE, so a deletion under way is waited for and then finds
   * nothing, and a deletion that comes later waits for the key the exchange mints.
   */
  async trust(id: string, lock = false): Promise<OidcTrustRow | undefined> {
    return this.db
      .selectFrom('oidc_trusts')
      .selectAll()
      .where('id', '=', id)
      .$if(lock && this.engine() === 'postgres', (q) => q.forKeyShare())
      .executeTakeFirst();
  }

  /** The trusts of an organization, oldest first. */
  async listTrusts(orgId: string): Promise<OidcTrustRow[]> {
    return this.db.selectFrom('oidc_trusts').selectAll().where('org_id', '=', orgId).orderBy('id').execute();
  }

  /**
   * The trusts that name a project (deleted with it), oldest first. `lock` (PostgreSQL only: SQLite
   * has no row locks, its write transaction excludes every other): FOR UPDATE, so a concurrent
   * delete of one of them waits for this transaction.
   */
  async trustsOfProject(projectId: string, lock = false): Promise<OidcTrustRow[]> {
    return this.db
      .selectFrom('oidc_trusts')
      .selectAll()
      .where('project_id', '=', projectId)
      .orderBy('id')
      .$if(lock && this.engine() === 'postgres', (q) => q.forUpdate())
      .execute();
  }

  /**
   * Every trust in `issuer`, oldest first (ids sort by creation time). A trust written with or
   * without a trailing slash matches either: `https://gitlab.com/` is meant to be `https://gitlab.com`.
   */
  async trustsOfIssuer(issuer: string): Promise<OidcTrustRow[]> {
    const other = issuer.endsWith('/') ? issuer.replace(/\/+$/, '') : `${issuer}/`;
    return this.db
      .selectFrom('oidc_trusts')
      .selectAll()
      .where('issuer', 'in', [issuer, other])
      .orderBy('id')
      .execute();
  }

  async deleteTrust(id: string): Promise<boolean> {
    const res = await this.db.deleteFrom('oidc_trusts').where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  /** Records that the token `tokenId` was exchanged; false when it already was (a replay). See useOnce. */
  async useToken(tokenId: string, expiresAt: string): Promise<boolean> {
    return useOnce(this.db, 'oidc_token_uses', tokenId, expiresAt);
  }

  /** Forgets tokens that expired before `now` (they would be refused as expired anyway). */
  async pruneTokenUses(now: string): Promise<number> {
    const res = await this.db.deleteFrom('oidc_token_uses').where('expires_at', '<', now).executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}
