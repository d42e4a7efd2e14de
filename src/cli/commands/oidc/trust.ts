import { Command } from 'commander';
import { type CreateOidcTrust, OidcClient, type OidcTrustInfo } from '../../../client/oidc.js';
import { formatDuration, parseDuration } from '../../../core/duration.js';
import type { Scope } from '../../../core/types.js';
import { type CliContext, EMBEDDED } from '../../context.js';
import { UsageError } from '../../errors.js';
import { currentOrg, inCurrentOrg, teamSession } from '../../teams.js';
import type { CommandHost } from '../host.js';
import { parseScopes } from '../login.js';

export interface TrustAddOptions {
  issuer: string;
  claims: string[];
  audience?: string;
  project?: string;
  scopes?: Scope[];
  ttl?: string;
}

const MAX_TTL_S = 3600;

/** `--claim name=value` (repeatable) -> `{name: value}`; the value may hold `=` and `*` globs. */
export function parseClaims(pairs: readonly string[]): Record<string, string> {
  const claims: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0 || eq === pair.length - 1) {
      throw new UsageError(
        `Invalid --claim "${pair}": use name=value (e.g. repository=acme/api, ref=refs/heads/*).`,
      );
    }
    const name = pair.slice(0, eq).trim();
    if (Object.hasOwn(claims, name)) throw new UsageError(`--claim ${name} is given twice.`);
    claims[name] = pair.slice(eq + 1);
  }
  if (Object.keys(claims).length === 0) {
    throw new UsageError('A trust needs at least one --claim.', {
      hint: 'e.g. --claim repository=acme/api: without one, every job of the issuer would get a key.',
    });
  }
  return claims;
}

function ttlSeconds(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  let s: number;
  try {
    s = parseDuration(text);
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/^Invalid duration/, 'Invalid --ttl'));
  }
  if (s < 1 || s > MAX_TTL_S) throw new UsageError(`--ttl must be between 1s and 1h, not ${text}.`);
  return s;
}

/** Creates a trust in the current organization (owner or admin). */
export async function runTrustAdd(opts: TrustAddOptions, ctx: CliContext): Promise<OidcTrustInfo> {
  const body: CreateOidcTrust = { issuer: opts.issuer, claims: parseClaims(opts.claims) };
  const ttl = ttlSeconds(opts.ttl);
  if (ttl !== undefined) body.ttl_s = ttl;
  if (opts.scopes) body.scopes = opts.scopes;
  // the audience `login --oidc` asks for by default: this server's URL
  const audience =
    opts.audience ?? (ctx.server() !== EMBEDDED ? ctx.server().replace(/\/+$/, '') : undefined);
  if (audience !== undefined) body.audience = audience;
  if (opts.project !== undefined) {
    const { projectIdFor } = await import('../../teams.js');
    body.project_id = await projectIdFor(ctx, opts.project);
  }
  if (/^http:/i.test(opts.issuer)) {
    ctx.out.warn(
      'An http issuer is accepted only by a server started with --allow-http-issuers (tests); use https.',
    );
  }
  const t = await teamSession(ctx);
  const org = await currentOrg(ctx, t);
  return inCurrentOrg(ctx, org, () => new OidcClient(t.client).createTrust(org.id, body));
}

export async function runTrustList(_opts: object, ctx: CliContext): Promise<{ data: OidcTrustInfo[] }> {
  const t = await teamSession(ctx);
  const org = await currentOrg(ctx, t);
  return inCurrentOrg(ctx, org, () => new OidcClient(t.client).listTrusts(org.id));
}

export async function runTrustDelete(
  opts: { id: string },
  ctx: CliContext,
): Promise<{ id: string; deleted: true }> {
  const t = await teamSession(ctx);
  await new OidcClient(t.client).deleteTrust(opts.id);
  return { id: opts.id, deleted: true };
}

function claimsText(claims: Record<string, string>): string {
  return Object.entries(claims)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function createTrustCommand(host: CommandHost): Command {
  const trust = new Command('trust').description('trust policies of the current organization (owner, admin)');
  trust
    .command('add')
    .description('trust tokens of an OIDC issuer whose claims match to mint short-lived keys')
    .requiredOption('--issuer <url>', 'the issuer (https), e.g. https://token.actions.githubusercontent.com')
    .option('--claim <name=value>', 'a claim the token must have: exact, or * globs (repeatable)', collect)
    .option('--audience <aud>', 'the aud the token must carry (default: the server URL)')
    .option('--project <id|name>', 'the project keys go to (default: "default")')
    .option('--scopes <list>', 'scopes of the keys: read,write,admin (default read)')
    .option('--ttl <duration>', 'how long a key lives: 90s, 15m, 1h (at most 1h; default 15m)')
    .addHelpText(
      'after',
      `
Examples:
  $ breeze oidc trust add --issuer https://token.actions.githubusercontent.com \\
      --claim repository=acme/api --claim ref=refs/heads/main --scopes read,write --ttl 15m
  $ breeze oidc trust add --issuer https://gitlab.com --claim project_path=acme/api --claim ref_protected=true`,
    )
    .action(async (o: Record<string, unknown>, cmd: Command) => {
      const ctx = await host.context(cmd);
      const created = await runTrustAdd(
        {
          issuer: o.issuer as string,
          claims: (o.claim as string[] | undefined) ?? [],
          audience: o.audience as string | undefined,
          project: o.project as string | undefined,
          scopes: typeof o.scopes === 'string' ? parseScopes(o.scopes) : undefined,
          ttl: o.ttl as string | undefined,
        },
        ctx,
      );
      if (ctx.json) return ctx.out.json(created);
      ctx.out.data(created.id);
      ctx.out.success(
        `Created trust ${created.id}: tokens of ${created.issuer} for ${created.audience} with ${claimsText(created.claims)} get ${created.scopes.join(',')} keys for ${formatDuration(created.ttl_s)}.`,
      );
    });
  trust
    .command('list')
    .alias('ls')
    .description('list the trust policies of the current organization')
    .action(async (_o, cmd: Command) => {
      const ctx = await host.context(cmd);
      const result = await runTrustList({}, ctx);
      if (ctx.json) return ctx.out.json(result);
      if (result.data.length === 0) return ctx.out.info('No OIDC trusts.');
      const { renderTable } = await import('../../ui/table.js');
      const rows = result.data.map((t) => [
        t.id,
        t.issuer,
        t.audience,
        claimsText(t.claims),
        t.project_id,
        t.scopes.join(','),
        formatDuration(t.ttl_s),
      ]);
      ctx.out.data(renderTable(['ID', 'ISSUER', 'AUDIENCE', 'CLAIMS', 'PROJECT', 'SCOPES', 'TTL'], rows));
    });
  trust
    .command('delete')
    .alias('rm')
    .description('delete a trust policy (keys it minted live on until they expire)')
    .argument('<id>', 'the trust id (oidc_...)')
    .action(async (id: string, _o, cmd: Command) => {
      const ctx = await host.context(cmd);
      const r = await runTrustDelete({ id }, ctx);
      if (ctx.json) return ctx.out.json(r);
      ctx.out.success(`Deleted trust ${r.id}.`);
    });
  return trust;
}
