import fastifySwagger from '@fastify/swagger';
import type { FastifyInstance, FastifySchema, RouteOptions } from 'fastify';
import { errorSchema } from './routes/schemas.js';

/**
 * What the OpenAPI document says about each operation beyond its route schema, keyed by
 * `METHOD /fastify/url`. Kept here, in one table, rather than in every route file: the document
 * must stay lint-clean (Redocly `recommended`, Spectral `spectral:oas`; test/server/openapi.test.ts
 * runs both), and a new route that is missing here has no `operationId`, which fails that test.
 * A route may also set `schema.operationId` / `schema.description` itself; those win.
 */
export const OPERATIONS: Readonly<Record<string, { operationId: string; description: string }>> = {
  'GET /healthz': {
    operationId: 'getHealth',
    description: 'Answers `{"status":"ok"}` while the server is up. No credential needed.',
  },
  'GET /v1/me': {
    operationId: 'getMe',
    description:
      'The user behind the credential and how it authenticated (`api_key`, `jwt` or `session`), with its key id and scopes.',
  },
  'GET /v1/api-keys': {
    operationId: 'listApiKeys',
    description:
      "The caller's keys, newest first, `limit` 1..200 (default 50); pass `next_cursor` back as `cursor` for the next page. Needs an `admin` key, a JWT or a session.",
  },
  'POST /v1/api-keys': {
    operationId: 'createApiKey',
    description:
      'Mints a key (default scopes `["read"]`). The plaintext `api_key` is in this response and nowhere else. A key cannot grant a scope it does not hold itself (`403`).',
  },
  'GET /v1/api-keys/:key_id': {
    operationId: 'getApiKey',
    description: "One key of the caller's user. A key without `admin` may read only itself.",
  },
  'PATCH /v1/api-keys/:key_id': {
    operationId: 'updateApiKey',
    description: 'Renames a key or changes its scopes (never wider than the caller holds).',
  },
  'DELETE /v1/api-keys/:key_id': {
    operationId: 'deleteApiKey',
    description: 'Deletes a key for good; it is refused everywhere within a second. A key may delete itself.',
  },
  'POST /v1/api-keys/:key_id/rotate': {
    operationId: 'rotateApiKey',
    description:
      "Mints a successor with the same name, scopes and expiry; the old key expires after `grace_period_s` (default 3600, `0` at once; at most 7 days when a key rotates itself). Rotating a disabled, expired or already rotated key is `409`. Only the key's own user (or the key itself) may rotate it: an owner or admin managing another member's key gets `403`, as the new key would act as that member.",
  },
  'POST /v1/api-keys/:key_id/disable': {
    operationId: 'disableApiKey',
    description: 'Refuses the key (within a second, on every instance) until it is enabled again.',
  },
  'POST /v1/api-keys/:key_id/enable': {
    operationId: 'enableApiKey',
    description: 'Accepts a disabled key again.',
  },
  'GET /.well-known/jwks.json': {
    operationId: 'getJwks',
    description:
      'The public keys (current and recently retired) that verify the JWTs of the email-code flow. No credential needed.',
  },
  'POST /auth/code': {
    operationId: 'requestAuthCode',
    description:
      'Mails an 8-character code (valid 10 minutes, single use). Answers the same whether or not the address has an account.',
  },
  'POST /auth/code/:id/verifications': {
    operationId: 'verifyAuthCode',
    description:
      'Trades the mailed code for an API key (`type: "api_key"`) or a one-hour JWT (`type: "jwt"`), once. Five wrong codes kill the request.',
  },
  'POST /v1/cli/logins': {
    operationId: 'startCliLogin',
    description:
      'Starts a PKCE (S256) login that the user approves in a browser at `verification_uri_complete`.',
  },
  'POST /v1/cli/logins/:login_id/exchange': {
    operationId: 'exchangeCliLogin',
    description:
      'Exchanges an approved login for a new API key, once, with the verifier (and the loopback `code` when the login had a `redirect_uri`).',
  },
  'GET /v1/orgs': {
    operationId: 'listOrgs',
    description: "The caller's organizations, with the caller's role in each.",
  },
  'POST /v1/orgs': {
    operationId: 'createOrg',
    description: 'Creates an organization with a project `default`; the caller becomes its `owner`.',
  },
  'GET /v1/orgs/:org_id/members': {
    operationId: 'listMembers',
    description: 'Members of an organization and their roles. Any member may list them; others get `404`.',
  },
  'PATCH /v1/orgs/:org_id/members/:user_id': {
    operationId: 'updateMemberRole',
    description:
      "Changes a member's role (owner, admin; an admin cannot touch owners). The member's keys narrow at once. Demoting the last owner is `409`.",
  },
  'DELETE /v1/orgs/:org_id/members/:user_id': {
    operationId: 'removeMember',
    description:
      'Removes a member, or lets a member leave. Their keys in the organization are refused within a second. Removing the last owner is `409`.',
  },
  'POST /v1/orgs/:org_id/invitations': {
    operationId: 'createInvitation',
    description:
      'Invites an email address with a role (owner, admin): mails a link and an 8-character code, valid 7 days, single use.',
  },
  'POST /v1/invitations/:id/accept': {
    operationId: 'acceptInvitation',
    description:
      'Joins the organization with the mailed code; only a credential of the invited email may. Anything wrong is `404`.',
  },
  'GET /v1/orgs/:org_id/projects': {
    operationId: 'listProjects',
    description: 'Projects of an organization. Any member may list them.',
  },
  'POST /v1/orgs/:org_id/projects': {
    operationId: 'createProject',
    description: 'Creates a project (owner, admin); names are unique within the organization.',
  },
  'DELETE /v1/projects/:project_id': {
    operationId: 'deleteProject',
    description: 'Deletes a project (owner, admin); `409` while it has keys, and for `default`.',
  },
  'GET /v1/audit-events': {
    operationId: 'listAuditEvents',
    description:
      "The audit log of an organization (`org_id`, default the key's or the personal one), newest first, `limit` 1..200 (default 50); pass `next_cursor` back as `cursor`. Filters: `action`, `key_id`, `actor_id`, `since` (RFC 3339 or `24h`). Owners and admins read every event; other members those they made or whose target is theirs. Another organization is `404`.",
  },
  'POST /v1/orgs/:org_id/webhooks': {
    operationId: 'createWebhook',
    description:
      'Subscribes an `https` URL to events (audit actions, `key.expiring`, or `*`). Private, loopback and link-local targets are `400` unless the server runs with `--allow-private-webhooks`.',
  },
  'GET /v1/orgs/:org_id/webhooks': {
    operationId: 'listWebhooks',
    description: 'Webhooks of an organization (owner, admin).',
  },
  'DELETE /v1/webhooks/:id': {
    operationId: 'deleteWebhook',
    description: 'Deletes a webhook and its delivery log; pending deliveries are dropped.',
  },
  'GET /v1/webhooks/:id/deliveries': {
    operationId: 'listWebhookDeliveries',
    description:
      'The delivery log, newest first: status (`pending`, `delivered`, `failed`), attempts, last status code and the next attempt.',
  },
  'POST /v1/webhooks/:id/test': {
    operationId: 'testWebhook',
    description:
      'Enqueues a `ping` event to this webhook (whatever it subscribed to) and answers its delivery.',
  },
  'POST /v1/keys/verify': {
    operationId: 'verifyKey',
    description:
      "Checks a key of the caller's organization (caller: a key with `verify`). Always `200` with `valid` and a `code`: `VALID` (with the key, its user, effective scopes and rate limit), `MALFORMED`, `NOT_FOUND` (also for a key of another organization), `DISABLED`, `EXPIRED`, `INSUFFICIENT_SCOPE`, `RATE_LIMITED`. A verification is a use of the checked key: it spends that key's rate limit and counts in its usage.",
  },
  'GET /v1/keys/events': {
    operationId: 'streamKeyEvents',
    description:
      'Server-Sent Events (caller: a key with `verify`): `key.revoked` `{"key_id"}` within a second of a key of the organization being disabled, deleted, narrowed, expired (a rotation\'s grace end) or its creator removed, on any instance. Send `Last-Event-ID` to resume; `: ping` at least every 15 s; at most 5 streams per key (`429`).',
  },
  'GET /v1/api-keys/:key_id/usage': {
    operationId: 'getApiKeyUsage',
    description:
      'Requests and refusals (rate limit, scope) of a key per hour or day (UTC), every bucket of `from`..`to` present, oldest first. Same visibility as reading the key.',
  },
  'GET /v1/orgs/:org_id/oidc-trusts': {
    operationId: 'listOidcTrusts',
    description: 'The OIDC trust policies of an organization (owner, admin).',
  },
  'POST /v1/orgs/:org_id/oidc-trusts': {
    operationId: 'createOidcTrust',
    description:
      'Trusts tokens of an OIDC issuer (`https`) with this `audience` (default: the server URL) and these claims (exact, or `*` glob) to mint keys of the caller in `project_id` (default: `default`) with `scopes` (never wider than the caller holds) for `ttl_s` seconds (at most 3600, default 900).',
  },
  'DELETE /v1/oidc-trusts/:trust_id': {
    operationId: 'deleteOidcTrust',
    description: 'Deletes a trust policy (owner, admin); keys it minted live on until they expire.',
  },
  'POST /v1/oidc/exchange': {
    operationId: 'exchangeOidcToken',
    description:
      "Trades a CI job's OIDC token (GitHub Actions, GitLab, ...) for a short-lived key, once per token. Signature (the issuer's JWKS), `iss`, `aud`, `exp`, `nbf` and the trust's claims are checked; any failure is `401` without saying which. `org_id` picks the organization when the token matches trusts of several. No credential needed; rate-limited per IP.",
  },
  'POST /v1/keys/leaks': {
    operationId: 'reportLeakedKey',
    description:
      'Reports a key seen in public. No credential needed; `202 {"received": true}` whether or not the key exists. A live key is disabled at once (or, under the organization\'s `notify` leak policy, left working), its creator is mailed and `key.leaked` is recorded. A malformed key (bad shape or checksum) is `400`. Rate-limited per IP.',
  },
  'GET /v1/orgs/:org_id': {
    operationId: 'getOrg',
    description: 'One organization of the caller with its settings (`leak_policy`). Any member may read it.',
  },
  'PATCH /v1/orgs/:org_id': {
    operationId: 'updateOrg',
    description:
      'Changes settings of an organization (owner, admin): `leak_policy` `disable` (a reported live key is disabled at once; the default) or `notify` (its creator is only mailed).',
  },
};

/** The tags operations use, with what they group. */
const TAGS = [
  { name: 'account', description: 'The caller.' },
  { name: 'api-keys', description: "Managing the caller's API keys." },
  { name: 'auth', description: 'Email codes, JWTs and the keys that verify them.' },
  { name: 'cli-login', description: 'Browser-approved login for the `breeze` CLI.' },
  { name: 'meta', description: 'Server health.' },
  { name: 'orgs', description: 'Organizations, members, roles and invitations.' },
  { name: 'projects', description: 'Projects of an organization; every key belongs to one.' },
  { name: 'audit', description: 'The audit log: who did what, from where.' },
  { name: 'webhooks', description: "Signed event deliveries to an organization's endpoints." },
  { name: 'verify', description: 'Checking Breeze keys in your own services, and their revocations.' },
  { name: 'oidc', description: 'CI identity: OIDC trust policies and the token exchange.' },
  { name: 'leaks', description: 'Reports of keys seen in public.' },
];

const ALL_CREDENTIALS: Record<string, string[]>[] = [{ apiKey: [] }, { bearer: [] }];

/** An operation's document entry: its table row, who may call it, and at least one 4xx. */
function describeRoute(schema: FastifySchema | undefined, route: RouteOptions): FastifySchema | undefined {
  if (!schema || (schema as { hide?: boolean }).hide || typeof route.method !== 'string') return schema;
  const s = schema as FastifySchema & {
    operationId?: string;
    description?: string;
    security?: unknown;
    response?: Record<string, unknown>;
  };
  const row = OPERATIONS[`${route.method} ${route.url}`];
  const auth = (route.config as { auth?: 'required' | 'optional' } | undefined)?.auth;
  const response = { ...s.response };
  // Node's HTTP parser refuses a malformed request to any route with 400 (plugins/errors.ts)
  if (!Object.keys(response).some((code) => code.startsWith('4'))) {
    response[400] = { ...errorSchema, description: 'Malformed request.' };
  }
  return {
    ...s,
    operationId: s.operationId ?? row?.operationId,
    description: s.description ?? row?.description,
    // the document's default is "an API key or a bearer token": say so where none is needed
    security:
      s.security ?? (auth === 'required' ? undefined : auth === 'optional' ? [...ALL_CREDENTIALS, {}] : []),
    response,
  };
}

/** Public URL without trailing slashes (OpenAPI server URLs must not end with one). */
function serverUrl(publicUrl: string): string {
  return publicUrl.replace(/\/+$/, '');
}

/**
 * Registers @fastify/swagger (before the routes, so it sees them) and `GET /openapi.json`, the
 * OpenAPI 3.1 document of every JSON route. `servers` is the server's public URL as it is when the
 * document is asked for (`breeze serve` learns its port only after listening).
 */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Breeze API',
        version: '1',
        description:
          'API keys for developers and CI: manage keys, sign in by email code or through the `breeze` CLI. Errors always have the shape `{"error": {"code", "message", "statusCode", "category", "request_id"}}`.',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      tags: TAGS,
      components: {
        securitySchemes: {
          apiKey: { type: 'apiKey', in: 'header', name: 'xi-api-key', description: 'A Breeze API key.' },
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'A Breeze API key, or a JWT from the email-code flow.',
          },
        },
      },
      security: ALL_CREDENTIALS,
    },
    transform: ({ schema, url, route }) => ({ schema: describeRoute(schema, route) as FastifySchema, url }),
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => {
    // swagger() returns the OpenAPI 3 document here (the plugin is registered with `openapi`)
    const { openapi, info, ...rest } = app.swagger() as unknown as { openapi: string; info: object };
    const url = serverUrl(app.breeze.config.publicUrl);
    return {
      openapi,
      info: { ...info, contact: { name: 'The operators of this Breeze server', url } },
      servers: [{ url, description: 'This server' }],
      ...rest,
    };
  });
}
