/**
 * What the team commands (orgs, projects, members, invitations, keys --project) share: the current
 * organization of the profile, finding an organization, project or member by id or name, and clear
 * messages for the conflicts PLATFORM.md defines (409).
 */

import type { BreezeClient } from '../client/client.js';
import { ApiError } from '../client/errors.js';
import {
  type MemberInfo,
  meContext,
  type OrgInfo,
  PlatformClient,
  type ProjectInfo,
} from '../client/platform.js';
import { isId } from '../client/validate.js';
import type { CliContext, Session } from './context.js';
import { EXIT, UsageError, UserError } from './errors.js';

/** The credential, its client, the team routes over it. */
export interface TeamSession {
  session: Session;
  client: BreezeClient;
  platform: PlatformClient;
}

export async function teamSession(ctx: CliContext): Promise<TeamSession> {
  const { session, client } = await ctx.authenticated();
  return { session, client, platform: new PlatformClient(client) };
}

/** The current organization: where it was read from, and its id. */
export interface CurrentOrg {
  id: string;
  /** `profile`: config.json's `org_id` (`breeze orgs switch`); `key`: the org of the key in use */
  source: 'profile' | 'key';
}

/**
 * The organization `projects …` and `members …` act on: the profile's `org_id` (set by
 * `breeze orgs switch`) when the stored key is in use, else the org of the key (`GET /v1/me`).
 * A key from BREEZE_API_KEY may be another user's: the profile's choice does not apply to it.
 */
export async function currentOrg(ctx: CliContext, t: TeamSession): Promise<CurrentOrg> {
  const saved = t.session.source === 'env' ? undefined : t.session.saved?.org_id;
  if (saved !== undefined) {
    if (!isId(saved)) {
      throw new UserError(
        `The organization of profile "${ctx.profile}" in ${ctx.config.path} is malformed.`,
        {
          hint: 'Run "breeze orgs switch <org>" to set it again.',
        },
      );
    }
    return { id: saved, source: 'profile' };
  }
  const org = meContext(await t.client.me()).org;
  if (!org) {
    throw new UserError('The server did not say which organization this key belongs to.', {
      hint: 'This server may not support organizations; run "breeze orgs list".',
    });
  }
  return { id: org.id, source: 'key' };
}

/** Not found among what the server listed: exit 4, like the server's 404. */
function notFound(message: string, hint: string): UserError {
  return new UserError(message, { hint, exitCode: EXIT.FORBIDDEN });
}

/** Picks one item by exact id, else by name (exact, then case-insensitive); ambiguity is a usage error. */
function pick<T extends { id: string; name: string }>(
  items: readonly T[],
  ref: string,
  what: string,
  listCommand: string,
): T {
  const byId = items.find((i) => i.id === ref);
  if (byId) return byId;
  let matches = items.filter((i) => i.name === ref);
  if (matches.length === 0) matches = items.filter((i) => i.name.toLowerCase() === ref.toLowerCase());
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) {
    throw new UsageError(`Several ${what}s are named "${ref}": ${matches.map((m) => m.id).join(', ')}.`, {
      hint: `Pass the id instead (see "${listCommand}").`,
    });
  }
  throw notFound(`No ${what} "${ref}".`, `Run "${listCommand}" to see them.`);
}

/** An organization of `GET /v1/orgs` by id or name. */
export async function findOrg(t: TeamSession, ref: string): Promise<OrgInfo> {
  const { data } = await t.platform.listOrgs();
  return pick(data, ref, 'organization', 'breeze orgs list');
}

/** `proj_…` ids go to the server as they are (it answers 404 for a project the caller cannot see). */
const PROJECT_ID = /^proj_[A-Za-z0-9]{1,120}$/;

/**
 * Runs `fn` against the current organization. When that is the profile's choice and the server
 * answers 404, the likely cause is that the user left it or was removed: say so, exit 4.
 */
export async function inCurrentOrg<T>(ctx: CliContext, org: CurrentOrg, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApiError && err.status === 404 && org.source === 'profile') {
      throw new UserError(
        `Organization ${org.id}, the current one of profile "${ctx.profile}", was not found: you may no longer be a member.`,
        {
          hint: 'Run "breeze orgs list", then "breeze orgs switch <org>".',
          exitCode: EXIT.FORBIDDEN,
          cause: err,
        },
      );
    }
    throw err;
  }
}

/** A project of the current organization by id or name. */
export async function findProject(
  ctx: CliContext,
  t: TeamSession,
  org: CurrentOrg,
  ref: string,
): Promise<ProjectInfo> {
  const { data } = await inCurrentOrg(ctx, org, () => t.platform.listProjects(org.id));
  return pick(data, ref, 'project', 'breeze projects list');
}

/** A member of the current organization by user id or email (case-insensitive). */
export async function findMember(
  ctx: CliContext,
  t: TeamSession,
  org: CurrentOrg,
  ref: string,
): Promise<MemberInfo> {
  const { data } = await inCurrentOrg(ctx, org, () => t.platform.listMembers(org.id));
  const lower = ref.toLowerCase();
  const found = ref.includes('@')
    ? data.find((m) => m.user.email.toLowerCase() === lower)
    : data.find((m) => m.user.id === ref);
  if (!found)
    throw notFound(`No member "${ref}" in this organization.`, 'Run "breeze members list" to see them.');
  return found;
}

/**
 * Runs `fn`; a `409 CONFLICT` becomes a UserError (exit 1) saying what the conflict means for this
 * command and what to do, followed by the server's own words.
 */
export async function explainConflict<T>(fn: () => Promise<T>, message: string, hint: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) {
      throw new UserError(`${message} (${err.message})`, { hint, exitCode: EXIT.FAILURE, cause: err });
    }
    throw err;
  }
}

/** `2026-01-01T12:34:56Z` -> `2026-01-01 12:34` for tables. */
export function shortTime(ts: string | null | undefined): string {
  return ts ? ts.slice(0, 16).replace('T', ' ') : '-';
}

/** `--project <id|name>` of `keys create` / `keys list`: a project id (names: of the current organization). */
export async function projectIdFor(ctx: CliContext, ref: string): Promise<string> {
  if (PROJECT_ID.test(ref)) return ref;
  const t = await teamSession(ctx);
  return (await findProject(ctx, t, await currentOrg(ctx, t), ref)).id;
}
