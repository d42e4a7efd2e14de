import { Command } from 'commander';
import { displayPrefix, isWellFormedApiKey } from '../../core/api-key.js';
import type { UserInfo } from '../../core/types.js';
import type { CredentialSource } from '../../credentials/types.js';
import { type CliContext, EMBEDDED, type ValueSource } from '../context.js';
import { NotAuthenticatedError } from '../errors.js';
import { expiryWarning } from '../expiry.js';
import { clampText, MAX_CELL_LENGTH } from '../ui/terminal-text.js';
import type { CommandHost } from './host.js';

/** `status --json` shape of CLI.md (plus `expires_at` and `shadowed`). */
export interface StatusReport {
  profile: string;
  server: string;
  user: UserInfo | null;
  key_id: string | null;
  prefix: string | null;
  /** where the key came from: env (BREEZE_API_KEY), keychain or file */
  storage: CredentialSource;
  valid: boolean;
  expires_at: string | null;
  /** BREEZE_API_KEY hides a key stored for this profile */
  shadowed: boolean;
  /**
   * the current organization (the profile's, set by `orgs switch`, else the key's) and the caller's
   * role in it; null when the server names none
   */
  org: { id: string; name: string; role: string } | null;
  /** the project of the key in use */
  project: { id: string; name: string } | null;
  /** the organization of the key in use (differs from `org` after `orgs switch`); not in --json */
  key_org: { id: string; name: string } | null;
  /** where profile, server and project came from (flag > env > .breeze.json > profile > default) */
  sources: { profile: ValueSource; server: ValueSource; project: ValueSource };
  /** the `.breeze.json` that applies (breeze link), if any */
  link_file: string | null;
  /** the project pinned by BREEZE_PROJECT or .breeze.json, as written there */
  pinned_project: string | null;
}

/** Who the key belongs to and whether the server accepts it. Never throws for a refused key: `valid` says. */
export async function runStatus(_opts: object, ctx: CliContext): Promise<StatusReport> {
  const { session, client } = await ctx.authenticated();
  const report: StatusReport = {
    profile: session.profile,
    server: session.server,
    user: null,
    key_id: session.source === 'env' ? null : (session.saved?.key_id ?? null),
    // never a part of something that is not a Breeze key
    prefix: isWellFormedApiKey(session.apiKey) ? displayPrefix(session.apiKey) : null,
    storage: session.source,
    valid: false,
    expires_at: null,
    shadowed: session.shadowsStored,
    org: null,
    project: null,
    key_org: null,
    sources: { profile: ctx.source('profile'), server: ctx.source('server'), project: ctx.source('project') },
    link_file: ctx.link?.path ?? null,
    pinned_project: ctx.project() ?? null,
  };
  // the key's details need its id, which the profile knows already: ask for them alongside `me`
  // (one round trip instead of two), and use them only if `me` names that same key
  const savedKeyId = session.source === 'env' ? undefined : session.saved?.key_id;
  const early = savedKeyId === undefined ? undefined : client.getKey(savedKeyId);
  // a failure is looked at where the answer is used (or not at all): never an unhandled rejection
  early?.catch(() => {});
  try {
    const me = await client.me();
    report.valid = true;
    report.user = me.user;
    const { meContext, PlatformClient } = await import('../../client/platform.js');
    const team = meContext(me);
    report.org = team.org;
    report.project = team.project;
    report.key_org = team.org && { id: team.org.id, name: team.org.name };
    const chosen = session.source === 'env' ? undefined : session.saved?.org_id;
    if (chosen !== undefined && chosen !== team.org?.id) {
      // the profile switched organizations: name it, with the role the user holds there
      const org = (await new PlatformClient(client).listOrgs()).data.find((o) => o.id === chosen);
      report.org = org ? { id: org.id, name: org.name, role: org.role } : team.org;
    }
    report.key_id = me.auth.key_id ?? report.key_id;
    if (me.auth.key_id) {
      const key =
        early !== undefined && me.auth.key_id === savedKeyId
          ? await early
          : await client.getKey(me.auth.key_id);
      report.expires_at = key.expires_at;
      report.prefix = key.prefix;
      const saved = session.saved;
      if (session.source !== 'env' && saved?.key_id === key.key_id && saved.expires_at !== key.expires_at) {
        // keep the metadata `token` and `run` warn from (no network there) in step with the server
        await ctx.config
          .update((data) => {
            const p = data.profiles[session.profile];
            if (p && p.key_id === key.key_id) p.expires_at = key.expires_at;
          })
          .catch(() => {});
      }
    }
  } catch (err) {
    if ((err as { status?: number }).status !== 401) throw err;
  }
  return report;
}

/** One string per line: out.data escapes each (an email from the server cannot add a line). */
function render(r: StatusReport, ctx: CliContext): string[] {
  const where =
    r.storage === 'env'
      ? 'BREEZE_API_KEY (environment)'
      : r.storage === 'keychain'
        ? 'OS keychain'
        : `file (${ctx.configDir}/credentials.json)`;
  const from = (s: ValueSource) =>
    s === 'link'
      ? `  (from ${r.link_file})`
      : s === 'env'
        ? '  (from the environment)'
        : s === 'flag'
          ? '  (from the command line)'
          : s === 'profile'
            ? "  (the profile's saved server)"
            : '  (default)';
  const lines = [
    `Profile:  ${r.profile}${from(r.sources.profile)}`,
    `Server:   ${r.server === EMBEDDED ? `embedded (${ctx.configDir}/server)` : r.server}${from(r.sources.server)}`,
    `User:     ${r.user ? r.user.email : 'unknown'}`,
    `Key:      ${r.prefix ?? '?'}… (${r.key_id ?? 'id unknown'})`,
    `Source:   ${where}`,
    `Valid:    ${r.valid ? 'yes, the server accepts this key' : 'NO, the server refuses this key'}`,
  ];
  if (r.expires_at) lines.push(`Expires:  ${r.expires_at}`);
  // names are the server's free text: shown cut like a table cell (--json has them whole)
  const name = (n: string) => clampText(n, MAX_CELL_LENGTH);
  if (r.org) lines.push(`Org:      ${name(r.org.name)} (${r.org.id}), role ${r.org.role}`);
  if (r.project) {
    const elsewhere =
      r.key_org && r.key_org.id !== r.org?.id ? `, in the key's organization ${name(r.key_org.name)}` : '';
    lines.push(`Project:  ${name(r.project.name)} (${r.project.id})${elsewhere}`);
  }
  if (r.pinned_project) lines.push(`Pinned:   project ${r.pinned_project}${from(r.sources.project)}`);
  return lines;
}

export function createCommand(host: CommandHost): Command {
  return new Command('status')
    .description('show the profile, server, user, key and where it is stored; check it with the server')
    .addHelpText(
      'after',
      `
Exit code 3 when there is no key or the server refuses it.

Examples:
  $ breeze status
  $ breeze whoami --json
  $ BREEZE_API_KEY=brz_... breeze status      check a key from the environment`,
    )
    .action(async (_o, cmd: Command) => {
      const ctx = await host.context(cmd);
      const r = await runStatus({}, ctx);
      if (ctx.json) {
        ctx.out.json({
          profile: r.profile,
          server: r.server,
          user: r.user,
          key_id: r.key_id,
          prefix: r.prefix,
          storage: r.storage,
          valid: r.valid,
          expires_at: r.expires_at,
          shadowed: r.shadowed,
          org: r.org,
          project: r.project,
          sources: r.sources,
          link_file: r.link_file,
          pinned_project: r.pinned_project,
        });
      } else {
        ctx.out.data(render(r, ctx));
      }
      if (r.shadowed) {
        ctx.out.warn(`BREEZE_API_KEY is set: it shadows the key stored for profile "${r.profile}".`);
      }
      const expiring = expiryWarning(r.expires_at, ctx.clock(), r.storage === 'env');
      if (expiring) ctx.out.warn(expiring);
      if (!r.valid) {
        throw new NotAuthenticatedError('The server refused this key (deleted, disabled or expired).', {
          hint: r.storage === 'env' ? 'Check BREEZE_API_KEY.' : 'Run "breeze login".',
        });
      }
    });
}
