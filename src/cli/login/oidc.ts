import { open } from 'node:fs/promises';
import { ApiError } from '../../client/errors.js';
import {
  CiTokenError,
  fetchGithubActionsToken,
  JWT_SHAPE,
  MAX_CI_TOKEN_BYTES,
  OidcClient,
  type OidcExchangeResult,
} from '../../client/oidc.js';
import { isId } from '../../client/validate.js';
import type { MeResponse } from '../../core/types.js';
import { type CliContext, EMBEDDED } from '../context.js';
import { NotAuthenticatedError, UsageError, UserError } from '../errors.js';

/** `--oidc` flags shared by `login --oidc` and `run --oidc`. */
export interface OidcOptions {
  /** `--audience`: what GitHub Actions is asked to put in `aud` (default: the server URL) */
  audience?: string;
  /** `--org`: the organization whose trusts apply, when the token matches trusts of several */
  org?: string;
  /** `--oidc-token-file`: a file holding the token */
  tokenFile?: string;
}

export type CiTokenSource = 'file' | 'gitlab' | 'github-actions';

/** Where CI tokens come from, for messages and `--verbose`. */
const SOURCE_NAMES: Record<CiTokenSource, string> = {
  file: '--oidc-token-file',
  gitlab: 'BREEZE_OIDC_TOKEN',
  'github-actions': 'GitHub Actions',
};

function checkToken(raw: string, from: string): string {
  const token = raw.trim();
  if (!JWT_SHAPE.test(token) || token.length > MAX_CI_TOKEN_BYTES) {
    throw new UsageError(`${from} does not hold an OIDC token (a JWT: three base64url parts).`, {
      hint: 'Check what writes it; the token is not printed.',
    });
  }
  return token;
}

/**
 * The text of a token file, read up to the size cap: a device or a pipe (`/dev/stdin`, `<(...)`)
 * reports size 0 and may never end, so its size cannot be checked before reading.
 */
async function readTokenFile(path: string): Promise<string> {
  const limit = MAX_CI_TOKEN_BYTES + 64;
  const file = await open(path, 'r');
  try {
    const buf = Buffer.alloc(limit + 1);
    let size = 0;
    while (size < buf.length) {
      const { bytesRead } = await file.read(buf, size, buf.length - size, null);
      if (bytesRead === 0) break;
      size += bytesRead;
    }
    if (size > limit) throw new Error('too large');
    return buf.subarray(0, size).toString('utf8');
  } finally {
    await file.close();
  }
}

/** The audience asked of GitHub Actions: `--audience`, else the server's URL. */
export function defaultAudience(ctx: CliContext, opts: OidcOptions): string {
  if (opts.audience !== undefined) {
    if (!opts.audience.trim()) throw new UsageError('--audience cannot be empty.');
    return opts.audience.trim();
  }
  const server = ctx.server();
  if (server === EMBEDDED) {
    throw new UsageError('An OIDC login needs the server CI talks to.', {
      hint: 'Pass --server <url> (or set BREEZE_SERVER); --audience <a> sets the audience explicitly.',
    });
  }
  return server.replace(/\/+$/, '');
}

/**
 * The CI job's OIDC token: `--oidc-token-file`, else `BREEZE_OIDC_TOKEN` (GitLab `id_tokens`), else
 * GitHub Actions (`ACTIONS_ID_TOKEN_REQUEST_URL` + `ACTIONS_ID_TOKEN_REQUEST_TOKEN`, asked for the
 * audience). The token itself is never printed.
 */
export async function obtainCiToken(
  ctx: CliContext,
  opts: OidcOptions,
): Promise<{ token: string; source: CiTokenSource }> {
  if (opts.tokenFile !== undefined) {
    let raw: string;
    try {
      raw = await readTokenFile(opts.tokenFile);
    } catch (err) {
      throw new UsageError(`Cannot read the OIDC token file ${opts.tokenFile} (${(err as Error).message}).`);
    }
    return { token: checkToken(raw, `The file ${opts.tokenFile}`), source: 'file' };
  }
  const gitlab = ctx.env.BREEZE_OIDC_TOKEN;
  if (gitlab) {
    if (opts.audience !== undefined) {
      ctx.out.warn(
        '--audience is not used with BREEZE_OIDC_TOKEN: its audience is set by `id_tokens` in .gitlab-ci.yml.',
      );
    }
    return { token: checkToken(gitlab, 'BREEZE_OIDC_TOKEN'), source: 'gitlab' };
  }
  const requestUrl = ctx.env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const requestToken = ctx.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
  if (requestUrl && requestToken) {
    const audience = defaultAudience(ctx, opts);
    try {
      const token = await fetchGithubActionsToken({ requestUrl, requestToken, audience, signal: ctx.signal });
      return { token: checkToken(token, 'The GitHub Actions token'), source: 'github-actions' };
    } catch (err) {
      if (err instanceof CiTokenError)
        throw new UserError(err.message, { hint: 'Re-run the job; check the runner can reach GitHub.' });
      throw err;
    }
  }
  if (requestUrl || ctx.env.GITHUB_ACTIONS === 'true') {
    throw new UsageError('This GitHub Actions job cannot request an OIDC token.', {
      hint: 'Give the job "permissions: id-token: write" (and contents: read).',
    });
  }
  throw new UsageError('No CI OIDC token found.', {
    hint: 'GitHub Actions: give the job "permissions: id-token: write". GitLab: add "id_tokens: BREEZE_OIDC_TOKEN: aud: <server URL>" to the job. Elsewhere: --oidc-token-file <file>.',
  });
}

/** Obtains the CI token and trades it for a short-lived key (PLATFORM.md "CI identity"). */
export async function exchangeCiToken(
  ctx: CliContext,
  opts: OidcOptions,
): Promise<OidcExchangeResult & { source: CiTokenSource }> {
  if (opts.org !== undefined && !(isId(opts.org) && opts.org.startsWith('org_'))) {
    throw new UsageError(`--org takes an organization id (org_…), not "${opts.org}".`, {
      hint: 'CI has no login to look names up with: copy the id from "breeze orgs list".',
    });
  }
  const { token, source } = await obtainCiToken(ctx, opts);
  const client = new OidcClient(await ctx.client());
  try {
    return { ...(await client.exchange(token, opts.org)), source };
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      throw new NotAuthenticatedError(
        `The server did not accept the OIDC token from ${SOURCE_NAMES[source]}.`,
        {
          hint: `Check the trust ("breeze oidc trust list"): issuer, audience and claims must match the token, and each token works once.${opts.org === undefined ? ' When the token matches trusts of several organizations, pass --org <org_id>.' : ''} The server log says which check failed.`,
          cause: err,
        },
      );
    }
    throw err;
  }
}

/**
 * `breeze login --oidc`: without `--save` nothing is stored; the key goes to stdout alone (for
 * `BREEZE_API_KEY=$(breeze login --oidc)`), or the exchange's answer with `--json`. With `--save` it
 * is stored for the profile like any login's key, and reported like one.
 */
export async function runOidcLogin(
  opts: OidcOptions & { save?: boolean; storage?: 'keychain' | 'file' },
  ctx: CliContext,
): Promise<OidcExchangeResult> {
  const result = await exchangeCiToken(ctx, opts);
  const { api_key: apiKey, key } = result;
  const expires = key.expires_at ? `, expires ${key.expires_at}` : '';
  if (!opts.save) {
    if (ctx.json) ctx.out.json({ api_key: apiKey, key, trust_id: result.trust_id });
    else {
      ctx.out.data(apiKey);
      ctx.out.info(
        `Short-lived key ${key.prefix}… (${key.key_id}) from the ${SOURCE_NAMES[result.source]} OIDC token${expires}; not saved (--save stores it).`,
      );
    }
    return result;
  }
  const { discardLoginKey, saveLogin, savedLoginJson, storagePreference } = await import('../session.js');
  let me: MeResponse;
  try {
    me = await (await ctx.client({ apiKey })).me();
  } catch (err) {
    // not stored, not shown: the key must not stay alive unseen until it expires
    await discardLoginKey(ctx, apiKey, key.key_id);
    throw err;
  }
  const saved = await saveLogin(
    ctx,
    { apiKey, key, user: me.user, minted: true },
    { storage: storagePreference(ctx, opts.storage) },
  );
  if (ctx.json) {
    ctx.out.json({ ...savedLoginJson(saved), expires_at: key.expires_at });
  }
  return result;
}

/**
 * `breeze run --oidc -- cmd`: a short-lived key for the job's OIDC token goes into the command's
 * environment (BREEZE_API_KEY, BREEZE_API_KEY_ID, BREEZE_SERVER) and nowhere else; when the command
 * ends the key deletes itself on the server (it would expire anyway).
 */
export async function runWithOidc(
  opts: OidcOptions,
  ctx: CliContext,
  run: (vars: Record<string, string>) => Promise<number>,
): Promise<number> {
  const { api_key: apiKey, key } = await exchangeCiToken(ctx, opts);
  const vars: Record<string, string> = { BREEZE_API_KEY: apiKey, BREEZE_API_KEY_ID: key.key_id };
  if (ctx.server() !== EMBEDDED) vars.BREEZE_SERVER = ctx.server();
  try {
    return await run(vars);
  } finally {
    try {
      await (await ctx.client({ apiKey })).deleteKey(key.key_id);
    } catch (err) {
      // expired meanwhile (a long command): nothing left to delete
      if (!(err instanceof ApiError && err.status === 401)) {
        ctx.out.warn(
          `Could not delete the short-lived key ${key.key_id} (${(err as Error).message}); it expires at ${key.expires_at}.`,
        );
      }
    }
  }
}
