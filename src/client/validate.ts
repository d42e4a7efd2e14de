/**
 * What a server sends is untrusted: every answer the client hands on is checked here first, so that a
 * malicious or broken server cannot make the CLI store or print something that is not what API.md
 * promises (a "key" that is a shell command, an id with quotes and newlines, a number that turns a
 * timer into a busy loop). A mismatch is an `ApiError` with code `UNEXPECTED_RESPONSE`; its message
 * names the field, never the value. Cheap to import (no undici).
 */
import { DISPLAY_PREFIX_LENGTH, isWellFormedApiKey } from '../core/api-key.js';
import type {
  ApiKeyInfo,
  CliLoginExchangeResult,
  CliLoginStart,
  CreatedKeyResponse,
  KeyListResponse,
  MeResponse,
  RotatedKeyResponse,
  UserInfo,
} from '../core/types.js';
import { ApiError } from './errors.js';

/** Ids of keys, users, logins and codes: letters, digits, `_` and `-`, at most 128. */
export const ID_SHAPE = /^[A-Za-z0-9_-]{1,128}$/;
/** `prefix` of a key object: the first 12 characters of a key (`brz_` + 8 base62). */
export const PREFIX_SHAPE = new RegExp(`^brz_[0-9A-Za-z]{${DISPLAY_PREFIX_LENGTH - 4}}$`);
/** API.md: 8 letters of `BCDFGHJKLMNPQRSTVWXZ`, shown as `XXXX-XXXX`. */
export const USER_CODE_SHAPE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/;
const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+$/;
// Built on first use, and only for text that is not printable ASCII: as a literal, V8 checks this
// Unicode-class regex when it compiles the module (about a millisecond on every command).
let controlOrFormat: RegExp | undefined;
function hasControlOrFormat(value: string): boolean {
  if (/^[ -~]*$/.test(value)) return false;
  controlOrFormat ??= /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
  return controlOrFormat.test(value);
}

export function isId(value: unknown): value is string {
  return typeof value === 'string' && ID_SHAPE.test(value);
}

/** An email address as the CLI keeps it in config.json: one `@`, no spaces, controls or format characters. */
export function isEmailLike(value: unknown): value is string {
  return (
    typeof value === 'string' && value.length <= 254 && EMAIL_SHAPE.test(value) && !hasControlOrFormat(value)
  );
}

export function bad(what: string, field: string, problem: string): ApiError {
  return new ApiError(`Unexpected response from the server: ${what}: ${field} ${problem}.`, {
    code: 'UNEXPECTED_RESPONSE',
    status: 200,
  });
}

export function record(what: string, field: string, value: unknown): Record<string, unknown> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw bad(what, field, 'is not an object');
  return value as Record<string, unknown>;
}

export function str(what: string, field: string, value: unknown): string {
  if (typeof value !== 'string') throw bad(what, field, 'is not a string');
  return value;
}

export function nullableStr(what: string, field: string, value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return str(what, field, value);
}

export function id(what: string, field: string, value: unknown): string {
  if (!isId(value)) throw bad(what, field, 'is not a well-formed id');
  return value;
}

function apiKey(what: string, field: string, value: unknown): string {
  if (typeof value !== 'string' || !isWellFormedApiKey(value))
    throw bad(what, field, 'is not a well-formed Breeze API key; nothing was stored');
  return value;
}

function finite(what: string, field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw bad(what, field, 'is not a number');
  return value;
}

/** A user object: a well-formed id and email. */
export function checkUser(what: string, value: unknown): UserInfo {
  const u = record(what, 'user', value);
  if (!isEmailLike(u.email)) throw bad(what, 'user.email', 'is not an email address');
  return { ...u, id: id(what, 'user.id', u.id), email: u.email } as UserInfo;
}

/** A key object of API.md. Free text (`name`) is kept as it is: the output layer escapes it. */
export function checkKey(what: string, value: unknown, field = 'key'): ApiKeyInfo {
  const k = record(what, field, value);
  id(what, `${field}.key_id`, k.key_id);
  str(what, `${field}.name`, k.name);
  if (typeof k.prefix !== 'string' || !PREFIX_SHAPE.test(k.prefix))
    throw bad(what, `${field}.prefix`, 'is not a key prefix');
  if (!Array.isArray(k.scopes) || !k.scopes.every((s) => typeof s === 'string'))
    throw bad(what, `${field}.scopes`, 'is not a list of scopes');
  str(what, `${field}.status`, k.status);
  str(what, `${field}.created_at`, k.created_at);
  for (const f of ['expires_at', 'last_used_at', 'disabled_at', 'rotated_from'] as const)
    nullableStr(what, `${field}.${f}`, k[f]);
  // teams (PLATFORM.md): absent on servers from before organizations
  for (const f of ['org_id', 'project_id', 'created_by'] as const)
    if (k[f] !== undefined && k[f] !== null) id(what, `${field}.${f}`, k[f]);
  if (
    k.requests_24h !== undefined &&
    (!Number.isSafeInteger(k.requests_24h) || (k.requests_24h as number) < 0)
  )
    throw bad(what, `${field}.requests_24h`, 'is not a count');
  return k as unknown as ApiKeyInfo;
}

/** A key object that comes with its plaintext: the plaintext is a well-formed key and its prefix matches. */
function checkMinted<T extends CreatedKeyResponse>(what: string, value: unknown): T {
  const k = checkKey(what, value, 'response');
  const plaintext = apiKey(what, 'api_key', (value as { api_key?: unknown }).api_key);
  if (plaintext.slice(0, DISPLAY_PREFIX_LENGTH) !== k.prefix)
    throw bad(what, 'prefix', 'does not match the api_key');
  return value as T;
}

export function checkCreatedKey(what: string, value: unknown): CreatedKeyResponse {
  return checkMinted(what, value);
}

export function checkRotatedKey(what: string, value: unknown): RotatedKeyResponse {
  const rotated = checkMinted<RotatedKeyResponse>(what, value);
  checkKey(what, rotated.previous, 'previous');
  return rotated;
}

/** Longest `next_cursor` taken (the server's are ~30 characters and it takes at most 200 back). */
const MAX_CURSOR_LENGTH = 2000;

export function checkKeyPage(what: string, value: unknown): KeyListResponse {
  const page = record(what, 'response', value);
  if (!Array.isArray(page.data)) throw bad(what, 'data', 'is not a list');
  for (const [i, k] of page.data.entries()) checkKey(what, k, `data[${i}]`);
  if (!(page.next_cursor === null || typeof page.next_cursor === 'string'))
    throw bad(what, 'next_cursor', 'is not a string or null');
  // it goes back in the next request's URL, and listAllKeys keeps every one it was handed (to
  // notice a loop): megabyte cursors would make a long listing take minutes and gigabytes
  if (typeof page.next_cursor === 'string' && page.next_cursor.length > MAX_CURSOR_LENGTH)
    throw bad(what, 'next_cursor', 'is too long');
  return page as unknown as KeyListResponse;
}

export function checkMe(what: string, value: unknown): MeResponse {
  const me = record(what, 'response', value);
  checkUser(what, me.user);
  const auth = record(what, 'auth', me.auth);
  str(what, 'auth.type', auth.type);
  if (auth.key_id !== undefined && auth.key_id !== null) id(what, 'auth.key_id', auth.key_id);
  if (auth.scopes !== undefined && !Array.isArray(auth.scopes))
    throw bad(what, 'auth.scopes', 'is not a list');
  return me as unknown as MeResponse;
}

/**
 * The answer to `POST /v1/cli/logins`, types only. What the login does with the values (clamping
 * `interval` and `expires_in`, opening only URLs on the server's origin) is src/cli/login's policy.
 */
export function checkLoginStart(what: string, value: unknown): CliLoginStart {
  const s = record(what, 'response', value);
  id(what, 'login_id', s.login_id);
  if (typeof s.user_code !== 'string' || !USER_CODE_SHAPE.test(s.user_code))
    throw bad(what, 'user_code', 'is not a user code (XXXX-XXXX)');
  str(what, 'verification_uri', s.verification_uri);
  str(what, 'verification_uri_complete', s.verification_uri_complete);
  finite(what, 'expires_in', s.expires_in);
  finite(what, 'interval', s.interval);
  return s as unknown as CliLoginStart;
}

export function checkLoginExchange(what: string, value: unknown): CliLoginExchangeResult {
  const r = record(what, 'response', value);
  const plaintext = apiKey(what, 'api_key', r.api_key);
  const key = checkKey(what, r.key);
  if (plaintext.slice(0, DISPLAY_PREFIX_LENGTH) !== key.prefix)
    throw bad(what, 'key.prefix', 'does not match the api_key');
  checkUser(what, r.user);
  return r as unknown as CliLoginExchangeResult;
}

export function checkEmailCodeStart(what: string, value: unknown): { id: string } {
  const r = record(what, 'response', value);
  return { ...r, id: id(what, 'id', r.id) };
}

export function checkEmailVerification(
  what: string,
  value: unknown,
): { secret?: string; key_id?: string; token?: string; expires_at?: string } {
  const r = record(what, 'response', value);
  if (r.secret !== undefined) apiKey(what, 'secret', r.secret);
  if (r.key_id !== undefined) id(what, 'key_id', r.key_id);
  return r as { secret?: string; key_id?: string; token?: string; expires_at?: string };
}
