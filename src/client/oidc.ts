/**
 * Client of PLATFORM.md "CI identity": trust policies, the OIDC exchange, and fetching a GitHub
 * Actions job's OIDC token. Answers are checked like validate.ts does (a mismatch is
 * `UNEXPECTED_RESPONSE`, naming the field only).
 */
import { DISPLAY_PREFIX_LENGTH, isWellFormedApiKey } from '../core/api-key.js';
import type { ApiKeyInfo, Scope } from '../core/types.js';
import type { BreezeClient } from './client.js';
import { ApiError } from './errors.js';
import { bad, checkKey, id, record, str } from './validate.js';

/** A trust as the API answers it (core/types.ts, shared with the server). */
export type { OidcTrust as OidcTrustInfo } from '../core/types.js';

import type { OidcTrust as OidcTrustInfo } from '../core/types.js';

export interface CreateOidcTrust {
  issuer: string;
  audience?: string;
  claims: Record<string, string>;
  project_id?: string;
  scopes?: Scope[];
  ttl_s?: number;
}

export interface OidcExchangeResult {
  api_key: string;
  key: ApiKeyInfo;
  trust_id?: string;
}

/** A compact JWS: three base64url parts (the second and third non-empty). */
export const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** CI tokens are 1-2 kB; anything far larger is not one. */
export const MAX_CI_TOKEN_BYTES = 16 * 1024;

export function checkTrust(what: string, value: unknown, field = 'trust'): OidcTrustInfo {
  const t = record(what, field, value);
  for (const f of ['id', 'org_id', 'project_id', 'created_by'] as const) id(what, `${field}.${f}`, t[f]);
  for (const f of ['issuer', 'audience', 'created_at'] as const) str(what, `${field}.${f}`, t[f]);
  const claims = record(what, `${field}.claims`, t.claims);
  for (const [k, v] of Object.entries(claims)) str(what, `${field}.claims.${k}`, v);
  if (!Array.isArray(t.scopes) || !t.scopes.every((s) => typeof s === 'string'))
    throw bad(what, `${field}.scopes`, 'is not a list of scopes');
  if (!Number.isInteger(t.ttl_s) || (t.ttl_s as number) < 0)
    throw bad(what, `${field}.ttl_s`, 'is not a number');
  return t as unknown as OidcTrustInfo;
}

export function checkExchange(what: string, value: unknown): OidcExchangeResult {
  const r = record(what, 'response', value);
  if (typeof r.api_key !== 'string' || !isWellFormedApiKey(r.api_key))
    throw bad(what, 'api_key', 'is not a well-formed Breeze API key; nothing was stored');
  const key = checkKey(what, r.key, 'key');
  if (r.api_key.slice(0, DISPLAY_PREFIX_LENGTH) !== key.prefix)
    throw bad(what, 'key.prefix', 'does not match the api_key');
  if (r.trust_id !== undefined) id(what, 'trust_id', r.trust_id);
  return r as unknown as OidcExchangeResult;
}

const seg = encodeURIComponent;

/** Typed methods of the CI identity routes over a `BreezeClient`. */
export class OidcClient {
  constructor(private readonly client: BreezeClient) {}

  async listTrusts(orgId: string): Promise<{ data: OidcTrustInfo[] }> {
    const what = 'GET /v1/orgs/:org_id/oidc-trusts';
    const body = record(
      what,
      'response',
      (await this.client.request<unknown>('GET', `/v1/orgs/${seg(orgId)}/oidc-trusts`)).body,
    );
    if (!Array.isArray(body.data)) throw bad(what, 'data', 'is not a list');
    return { data: body.data.map((t, i) => checkTrust(what, t, `data[${i}]`)) };
  }

  async createTrust(orgId: string, body: CreateOidcTrust): Promise<OidcTrustInfo> {
    const what = 'POST /v1/orgs/:org_id/oidc-trusts';
    return checkTrust(
      what,
      (await this.client.request<unknown>('POST', `/v1/orgs/${seg(orgId)}/oidc-trusts`, { body })).body,
      'response',
    );
  }

  async deleteTrust(trustId: string): Promise<void> {
    await this.client.request<void>('DELETE', `/v1/oidc-trusts/${seg(trustId)}`);
  }

  /**
   * `POST /v1/oidc/exchange` (anonymous). Never retried: a token is accepted once, so a retry after
   * an answer lost on the way would only be refused as a replay.
   */
  async exchange(token: string, orgId?: string): Promise<OidcExchangeResult> {
    return checkExchange(
      'POST /v1/oidc/exchange',
      (
        await this.client.request<unknown>('POST', '/v1/oidc/exchange', {
          body: orgId ? { token, org_id: orgId } : { token },
          auth: false,
          retries: 0,
        })
      ).body,
    );
  }
}

/** Why a CI token could not be fetched (network, status, shape); the message never holds a token. */
export class CiTokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CiTokenError';
  }
}

/**
 * A GitHub Actions job's OIDC token: `GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=<aud>` with
 * `Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN`, answered `{"value": "<jwt>"}`. Through
 * HTTPS_PROXY / NO_PROXY like every other call; a timeout, a size cap, no redirects.
 */
export async function fetchGithubActionsToken(opts: {
  requestUrl: string;
  requestToken: string;
  audience: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}): Promise<string> {
  let url: URL;
  try {
    url = new URL(opts.requestUrl);
  } catch {
    throw new CiTokenError('ACTIONS_ID_TOKEN_REQUEST_URL is not a URL.');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new CiTokenError('ACTIONS_ID_TOKEN_REQUEST_URL is not an http(s) URL.');
  url.searchParams.set('audience', opts.audience);
  const { request, EnvHttpProxyAgent } = await import('undici');
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const dispatcher = new EnvHttpProxyAgent({ headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const signal = opts.signal
    ? AbortSignal.any([opts.signal, AbortSignal.timeout(timeoutMs)])
    : AbortSignal.timeout(timeoutMs);
  try {
    const res = await request(url, {
      method: 'GET',
      dispatcher,
      signal,
      headers: { authorization: `bearer ${opts.requestToken}`, accept: 'application/json; api-version=2.0' },
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > 64 * 1024) {
        res.body.destroy();
        throw new CiTokenError('The GitHub Actions token endpoint sent an oversized answer.');
      }
      chunks.push(chunk as Buffer);
    }
    if (res.statusCode !== 200) {
      throw new CiTokenError(`The GitHub Actions token endpoint answered HTTP ${res.statusCode}.`);
    }
    let value: unknown;
    try {
      value = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { value?: unknown }).value;
    } catch {
      throw new CiTokenError('The GitHub Actions token endpoint did not answer JSON.');
    }
    if (typeof value !== 'string' || !JWT_SHAPE.test(value) || value.length > MAX_CI_TOKEN_BYTES) {
      throw new CiTokenError('The GitHub Actions token endpoint did not answer a token.');
    }
    return value;
  } catch (err) {
    if (err instanceof CiTokenError || err instanceof ApiError) throw err;
    if (opts.signal?.aborted) throw err;
    const e = err as { name?: string; code?: string; message?: string };
    const why =
      e.name === 'TimeoutError' || e.code?.includes('TIMEOUT')
        ? 'timed out'
        : (e.code ?? e.message ?? 'failed');
    throw new CiTokenError(`Could not reach the GitHub Actions token endpoint (${why}).`);
  } finally {
    dispatcher.close().catch(() => {});
  }
}
