/**
 * Expiry warnings of `status`, `token` and `run` (issue 15): a key that expires within 7 days is
 * announced on stderr. `token` and `run` use the expiry recorded in config.json at login / rotation
 * (no network round-trip on the token path); `status` uses the server's answer and refreshes it.
 */

import { displayPrefix, isWellFormedApiKey } from '../core/api-key.js';
import type { CliContext, Session } from './context.js';

export const EXPIRY_WARNING_MS = 7 * 86400_000;

/** The warning for a key expiring at `expiresAt` (RFC 3339), or null when not within 7 days. */
export function expiryWarning(
  expiresAt: string | null | undefined,
  now: Date,
  fromEnv = false,
): string | null {
  if (!expiresAt) return null;
  const at = Date.parse(expiresAt);
  if (!Number.isFinite(at)) return null;
  const left = at - now.getTime();
  const which = fromEnv ? 'The key in BREEZE_API_KEY' : 'This key';
  const fix = fromEnv ? 'Replace it before then.' : 'Rotate it with "breeze keys rotate --self".';
  if (left <= 0)
    return `${which} expired at ${new Date(at).toISOString()}. ${fromEnv ? 'Replace it.' : 'Run "breeze login".'}`;
  if (left > EXPIRY_WARNING_MS) return null;
  const days = Math.round(left / 86400_000);
  const when = left < 86400_000 ? 'in less than a day' : `in ${days} day${days === 1 ? '' : 's'}`;
  return `${which} expires ${when} (${new Date(at).toISOString()}). ${fix}`;
}

/**
 * The expiry recorded for the session's key: the profile's stored metadata, also for a
 * BREEZE_API_KEY that is the profile's own key (same prefix). Undefined when unknown.
 */
export function storedExpiry(session: Session): string | null | undefined {
  const saved = session.saved;
  if (!saved) return undefined;
  if (session.source === 'env') {
    if (!isWellFormedApiKey(session.apiKey) || displayPrefix(session.apiKey) !== saved.prefix)
      return undefined;
  }
  return saved.expires_at;
}

/** Warns on stderr when the stored metadata says the session's key expires within 7 days (no network). */
export function warnIfExpiring(ctx: CliContext, session: Session): void {
  const w = expiryWarning(storedExpiry(session), ctx.clock(), session.source === 'env');
  if (w) ctx.out.warn(w);
}
