import type { OidcTrust as OidcTrustView, Scope } from '../../core/types.js';
import type { OidcTrustRow } from '../store/oidc.js';
import type { AuditActor, AuditRecord } from './audit.js';

/** A trust as the API shows it. */
export function trustView(row: OidcTrustRow): OidcTrustView {
  return {
    id: row.id,
    org_id: row.org_id,
    project_id: row.project_id,
    issuer: row.issuer,
    audience: row.audience,
    claims: JSON.parse(row.claims) as Record<string, string>,
    scopes: row.scopes.split(' ').filter(Boolean) as Scope[],
    ttl_s: Number(row.ttl_s),
    created_by: row.created_by,
    created_at: row.created_at,
  };
}

/** The audit event of a trust's deletion: by `oidc trust delete`, or with its project. */
export function trustDeletedEvent(row: OidcTrustRow, actor: AuditActor): AuditRecord {
  const view = trustView(row);
  return {
    action: 'oidc_trust.deleted',
    orgId: row.org_id,
    projectId: row.project_id,
    actor,
    target: { type: 'oidc_trust', id: row.id, ownerId: row.created_by },
    details: { issuer: view.issuer, audience: view.audience, claims: view.claims, scopes: view.scopes },
  };
}
