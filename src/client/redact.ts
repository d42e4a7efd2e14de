/** Header names whose values never reach a trace. */
export const SECRET_HEADERS = new Set([
  'xi-api-key',
  'x-api-key',
  'authorization',
  'cookie',
  'set-cookie',
  'proxy-authorization',
]);
/**
 * JSON fields (and query parameters) whose values never reach a trace. `state` is the loopback
 * login's anti-forgery value: with it, anything that reads the trace could answer the loopback
 * listener in the browser's place.
 */
export const SECRET_FIELDS = new Set([
  'api_key',
  'secret',
  'token',
  'code',
  'state',
  'code_verifier',
  'password',
  'access_token',
  'refresh_token',
]);

const REDACTED = '[redacted]';
const KEY_LIKE = /brz_[0-9A-Za-z]{8,}/g;

export function redactHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const text = Array.isArray(value) ? value.join(', ') : String(value);
    out[name] = SECRET_HEADERS.has(name.toLowerCase()) ? REDACTED : redactText(text);
  }
  return out;
}

/** A JSON value with every secret field replaced (recursively). */
export function redactJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactJson);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value))
      out[k] = SECRET_FIELDS.has(k.toLowerCase()) && !isErrorCode(value, k) ? REDACTED : redactJson(v);
    return out;
  }
  if (typeof value === 'string') return redactText(value);
  return value;
}

/**
 * `code` in an API.md error object (`{"error": {"code": "NOT_FOUND", "statusCode": 404, ...}}`) is an
 * error code, not a secret: keep it readable. Recognised by its sibling `statusCode`, never by the
 * value's look (an email code is upper-case letters too).
 */
function isErrorCode(parent: object, field: string): boolean {
  return field === 'code' && typeof (parent as { statusCode?: unknown }).statusCode === 'number';
}

/** A body as text for a trace: JSON is parsed and redacted; anything else has key-like strings masked. */
export function redactBody(text: string): string {
  if (!text) return text;
  try {
    return JSON.stringify(redactJson(JSON.parse(text)));
  } catch {
    return redactText(text);
  }
}

/** Masks key-like substrings (`brz_…`), keeping the 12-character display prefix. */
export function redactText(text: string): string {
  return text.replace(KEY_LIKE, (m) => `${m.slice(0, 12)}…[redacted]`);
}

/** A URL with secret query parameters (code, token, …) masked. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    for (const name of [...u.searchParams.keys()]) {
      if (SECRET_FIELDS.has(name.toLowerCase())) u.searchParams.set(name, REDACTED);
    }
    return redactText(u.toString());
  } catch {
    return redactText(url);
  }
}
