/** `verify` (PLATFORM.md): checks other keys of the organization; implies nothing else. */
export const SCOPES = ['read', 'write', 'admin', 'verify'] as const;
export type Scope = (typeof SCOPES)[number];

export type KeyStatus = 'active' | 'expiring' | 'expired' | 'disabled';
export type CreatedVia = 'api' | 'cli_login' | 'email_code' | 'rotation' | 'oidc';

/** The key object of API.md. */
export interface ApiKeyInfo {
  key_id: string;
  name: string;
  prefix: string;
  scopes: Scope[];
  status: KeyStatus;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  disabled_at: string | null;
  rotated_from: string | null;
  created_via: CreatedVia;
  /** the organization and project the key belongs to (PLATFORM.md "Organizations, members, projects") */
  /** (optional here: the client also talks to servers from before organizations) */
  org_id?: string;
  project_id?: string;
  /** the member who created the key; its effective scopes are capped by their current role */
  created_by?: string;
  /** in key lists: requests made with or verifying the key in the last 24 hours */
  requests_24h?: number;
}

/** Roles in an organization, widest first. */
export const ROLES = ['owner', 'admin', 'member', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export interface OrgRef {
  id: string;
  name: string;
  role: Role;
}

export interface ProjectRef {
  id: string;
  name: string;
}

export interface UserInfo {
  id: string;
  email: string;
}

export interface MeResponse {
  user: UserInfo;
  auth: { type: 'api_key' | 'jwt' | 'session'; key_id?: string; scopes: Scope[] };
  org?: OrgRef;
  /** for API keys: the key's project */
  project?: ProjectRef;
}

export interface KeyListResponse {
  data: ApiKeyInfo[];
  next_cursor: string | null;
}

export interface CreatedKeyResponse extends ApiKeyInfo {
  api_key: string;
}

export interface RotatedKeyResponse extends CreatedKeyResponse {
  previous: ApiKeyInfo;
}

/** Body of `POST /v1/cli/logins`. */
export interface CliLoginRequest {
  code_challenge: string;
  code_challenge_method: 'S256';
  client_name: string;
  hostname: string;
  key_name?: string;
  scopes?: Scope[];
  redirect_uri?: string;
  state?: string;
}

export interface CliLoginStart {
  login_id: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval: number;
}

export interface CliLoginExchangeResult {
  api_key: string;
  key: ApiKeyInfo;
  user: UserInfo;
}

/** Normalises a scope list: known scopes only, `read` always present, canonical order. */
export function normaliseScopes(scopes: readonly string[]): Scope[] {
  const set = new Set(scopes);
  set.add('read');
  return SCOPES.filter((s) => set.has(s));
}

/** An OIDC trust policy as the API shows it (PLATFORM.md "CI identity"). */
export interface OidcTrust {
  id: string;
  org_id: string;
  project_id: string;
  issuer: string;
  audience: string;
  claims: Record<string, string>;
  scopes: Scope[];
  ttl_s: number;
  created_by: string;
  created_at: string;
}
