import { displayPrefix, isWellFormedApiKey } from '../../core/api-key.js';
import { HttpError } from '../../core/errors.js';
import type { ServerContext } from '../context.js';
import type { Mailer } from '../mail/mailer.js';
import { isUsable, type KeyWithUser, scopesOf } from '../store/keys.js';
import type { LeakPolicy } from '../store/orgs.js';
import { type RequestMeta, SYSTEM_ACTOR } from './audit.js';
import { recordRevocations } from './key-events.js';

/** Leak reports per client IP (an IPv6 client by its /64) and minute. */
export const LEAK_REPORTS_PER_IP = { max: 20, timeWindow: 60_000 } as const;

/**
 * Every answer to a leak report takes at least this long, whatever was found: a report of a live
 * key does a little more work (an UPDATE) than one of an unknown key, and the answer must not tell
 * them apart. The mail goes out in the background.
 */
export const LEAK_ANSWER_FLOOR_MS = 60;

/** The longest `source` accepted (a URL of where the key was seen). */
export const LEAK_SOURCE_MAX_LENGTH = 2048;

/** A key's creator is mailed at most once per key in this window (a reporter cannot flood an inbox). */
const MAIL_WINDOW_MS = 3600_000;

/** Keys remembered for MAIL_WINDOW_MS (a hard cap: a flood of reports of distinct keys cannot grow it). */
export const MAILED_MAX = 10_000;

const KEY_LIKE = /brz_[0-9A-Za-z]{8,}/g;

/** What happened to a reported key (for the audit details and tests; never sent to the reporter). */
export type LeakOutcome =
  | { live: false }
  | { live: true; keyId: string; orgId: string; policy: LeakPolicy; disabled: boolean };

export interface LeakReport {
  key: string;
  /** the normalised source (see `normaliseLeakSource`) or null */
  source: string | null;
}

/**
 * `source` as it is stored: an http(s) URL without credentials, query string or fragment (they may
 * carry tokens), with anything that looks like a Breeze key cut to its display prefix. Throws 400
 * for anything that is not such a URL.
 */
export function normaliseLeakSource(source: string | undefined): string | null {
  if (source === undefined) return null;
  const invalid = (message: string) =>
    new HttpError('VALIDATION_FAILED', `Invalid source: ${message}.`, {
      details: [{ field: 'body.source', message }],
    });
  let url: URL;
  try {
    url = new URL(source);
  } catch {
    throw invalid('must be an http(s) URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalid('must be an http(s) URL');
  url.username = '';
  url.password = '';
  url.search = '';
  // a line anchor (`#L10`, `#L10-L12`) is kept: it says where; any other fragment is dropped
  if (!/^#L\d{1,9}(?:-L\d{1,9})?$/.test(url.hash)) url.hash = '';
  return url.toString().replace(KEY_LIKE, (k) => `${displayPrefix(k)}…`);
}

/**
 * PLATFORM.md "Leak reports": a reported live key is disabled at once (or, under the organization's
 * `notify` policy, left alone), its creator is mailed (prefix only), and every instance drops it
 * from its cache. The reporter learns nothing: the route answers the same in every case.
 */
export class LeakService {
  /** key id -> when its creator was last mailed, oldest first (at most `mailedMax` entries) */
  private readonly mailed = new Map<string, number>();

  constructor(
    private readonly ctx: ServerContext,
    private readonly mailer: Mailer,
    private readonly mailedMax = MAILED_MAX,
  ) {}

  /** Throws 400 unless `key` has the key's shape and checksum. */
  static check(key: string): void {
    if (!isWellFormedApiKey(key)) {
      throw new HttpError('VALIDATION_FAILED', 'Not a Breeze API key: wrong shape or checksum.', {
        details: [{ field: 'body.key', message: 'is not a well-formed Breeze API key' }],
      });
    }
  }

  /**
   * Handles one report of a well-formed key: `key.leaked` (and, when it disables the key,
   * `key.disabled`) is recorded in the transaction of the change, by the server (the reporter is
   * anonymous; `meta` holds its address), with the source but never the key.
   */
  async report(report: LeakReport, meta: RequestMeta): Promise<LeakOutcome> {
    const { store, keys, clock } = this.ctx;
    const found = await store.keys.findByHash(keys.hash(report.key));
    const now = clock();
    // a key of a creator who left its organization is refused already: nothing to stop
    if (!found || !isUsable(found.key, now) || found.role === null || !found.key.org_id) {
      return { live: false };
    }
    const key = found.key;
    const orgId = key.org_id as string;
    const org = await store.orgs.get(orgId);
    const policy: LeakPolicy = org?.leak_policy === 'notify' ? 'notify' : 'disable';
    const audit = this.ctx.audit;
    const event = (action: 'key.leaked' | 'key.disabled', details: Record<string, unknown>) => ({
      action,
      orgId,
      projectId: key.project_id,
      actor: SYSTEM_ACTOR,
      target: { type: 'key', id: key.id, ownerId: key.user_id },
      details: { name: key.name, prefix: key.prefix, ...details },
    });
    const disabled = await store.transaction(async (tx) => {
      if (policy === 'disable') {
        // conditional: of concurrent reports one disables; the key stays disabled until enabled again
        const res = await tx.db
          .updateTable('api_keys')
          .set({ disabled_at: now.toISOString() })
          .where('id', '=', key.id)
          .where('disabled_at', 'is', null)
          .executeTakeFirst();
        if (Number(res.numUpdatedRows) === 0) return null;
      }
      const off = policy === 'disable';
      await audit.record(tx, meta, event('key.leaked', { policy, disabled: off, source: report.source }));
      if (off) {
        await audit.record(tx, meta, event('key.disabled', { reason: 'leaked' }));
        // SDK verifiers drop their cached VALID on this event (GET /v1/keys/events)
        await recordRevocations(tx, [{ org_id: orgId, key_id: key.id, reason: 'disabled' }], now);
      }
      return off;
    });
    if (disabled) await keys.changed(key.id);
    if (disabled === null) return { live: false };
    const outcome: LeakOutcome = { live: true, keyId: key.id, orgId, policy, disabled };
    this.mailCreator(found, org?.name ?? null, outcome, report.source, now);
    return outcome;
  }

  private mailCreator(
    found: KeyWithUser,
    orgName: string | null,
    outcome: Extract<LeakOutcome, { live: true }>,
    source: string | null,
    now: Date,
  ): void {
    const id = found.key.id;
    const last = this.mailed.get(id);
    if (last !== undefined && now.getTime() - last < MAIL_WINDOW_MS) return;
    // an LRU by insertion order (re-inserted on each mail): the oldest entries go first, whatever
    // their age, so the map never holds more than `mailedMax` keys
    this.mailed.delete(id);
    this.mailed.set(id, now.getTime());
    while (this.mailed.size > this.mailedMax) {
      const oldest = this.mailed.keys().next().value as string;
      this.mailed.delete(oldest);
    }
    void this.mailer.send(leakMail(found, orgName, outcome, source, this.ctx.config.publicUrl, now));
  }
}

/** The mail to the key's creator: prefix, name and id of the key, never the key. */
export function leakMail(
  found: KeyWithUser,
  orgName: string | null,
  outcome: Extract<LeakOutcome, { live: true }>,
  source: string | null,
  publicUrl: string,
  now: Date,
) {
  const key = found.key;
  const prefix = key.prefix;
  const base = publicUrl.replace(/\/+$/, '');
  // a disabled key cannot be rotated (409): its replacement is a new key with the same scopes
  const create = `breeze keys create --name <name> --scopes ${scopesOf(key).join(',')}${key.project_id ? ` --project ${key.project_id}` : ''}`;
  const what = outcome.disabled
    ? `It has been disabled: every request with it is refused, and a disabled key cannot be rotated. Create its replacement (\`${create}\`, or on the keys page), move your programs to it, then delete this one: \`breeze keys delete ${key.id}\`.`
    : `Your organization's leak policy is "notify", so it still works. Rotate it now: \`breeze keys rotate ${key.id} --grace 0\`, or disable it: \`breeze keys disable ${key.id}\`.`;
  const lines = [
    `Someone reported your Breeze API key ${prefix}… as leaked (seen in public).`,
    '',
    `Key:          ${key.name} (${key.id}, ${prefix}…)`,
    ...(orgName ? [`Organization: ${orgName}`] : []),
    `Reported at:  ${now.toISOString()}`,
    ...(source ? [`Seen at:      ${source}`] : []),
    '',
    what,
    '',
    `Your keys: ${base}/keys/${key.id}`,
  ];
  return {
    to: found.email,
    subject: `Your Breeze API key ${prefix} was reported leaked`,
    text: `${lines.join('\n')}\n`,
  };
}
