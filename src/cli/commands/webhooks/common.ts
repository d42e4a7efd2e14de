import { type DeliveryInfo, WebhooksClient } from '../../../client/webhooks.js';
import type { CliContext } from '../../context.js';
import { type CurrentOrg, currentOrg, findOrg, type TeamSession, teamSession } from '../../teams.js';

/** The credential, the webhook routes over it, and the organization a command acts on. */
export interface WebhookSession {
  t: TeamSession;
  hooks: WebhooksClient;
}

export async function webhookSession(ctx: CliContext): Promise<WebhookSession> {
  const t = await teamSession(ctx);
  return { t, hooks: new WebhooksClient(t.client) };
}

/** `--org <id|name>` when given (from `GET /v1/orgs`), else the current organization. */
export async function orgFor(ctx: CliContext, s: WebhookSession, ref?: string): Promise<CurrentOrg> {
  if (ref === undefined) return currentOrg(ctx, s.t);
  return { id: (await findOrg(s.t, ref)).id, source: 'key' };
}

/** What a delivery's last attempt came to, in words. */
export function outcome(d: DeliveryInfo): string {
  if (d.status === 'delivered') return `delivered (${d.last_status_code ?? '2xx'})`;
  const why = d.last_error ?? (d.last_status_code ? `answered ${d.last_status_code}` : 'no attempt yet');
  if (d.status === 'failed') return `failed after ${d.attempts} attempts: ${why}`;
  return d.attempts === 0 ? 'pending' : `retrying (attempt ${d.attempts}: ${why})`;
}
