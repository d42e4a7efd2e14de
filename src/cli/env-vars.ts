import { isId } from '../client/validate.js';
import { displayPrefix, isWellFormedApiKey } from '../core/api-key.js';
import { type CliContext, EMBEDDED, type Session } from './context.js';
import { NotAuthenticatedError } from './errors.js';

export const ENV_FORMATS = ['sh', 'fish', 'powershell', 'dotenv', 'json'] as const;
export type EnvFormat = (typeof ENV_FORMATS)[number];

/**
 * The key of `session`, for printing or handing on (`token`, `env`, `run`): it must be a well-formed
 * Breeze key. Whatever else sits in the keychain, credentials.json or BREEZE_API_KEY (a hand edit,
 * an old bug, a value with quotes, `$()` or newlines) is refused rather than emitted into a shell.
 * The message never shows any part of the value.
 */
export function usableKey(session: Session): string {
  // (a malformed BREEZE_API_KEY never gets this far: ctx.session() refuses it for every command)
  if (isWellFormedApiKey(session.apiKey)) return session.apiKey;
  throw new NotAuthenticatedError(
    `The key stored for profile "${session.profile}" (${session.source}) is not a well-formed Breeze API key; it is not printed.`,
    {
      hint: `Run "breeze login${session.profile !== 'default' ? ` --profile ${session.profile}` : ''}" again.`,
    },
  );
}

/**
 * The variables `env` prints and `run` injects: BREEZE_API_KEY, BREEZE_API_KEY_ID and BREEZE_SERVER
 * (unless embedded). Ordered, for stable output. The id of a saved key is known without a network
 * call (the fast path of `env`); only a BREEZE_API_KEY that is not the saved key and comes without
 * BREEZE_API_KEY_ID costs a request (GET /v1/me).
 */
export async function credentialEnv(ctx: CliContext, session?: Session): Promise<Record<string, string>> {
  const s = session ?? (await ctx.session());
  const vars: Record<string, string> = { BREEZE_API_KEY: usableKey(s) };
  const keyId =
    s.source === 'env'
      ? ctx.env.BREEZE_API_KEY_ID ||
        (s.saved && s.saved.prefix === displayPrefix(s.apiKey) ? s.saved.key_id : undefined) ||
        (await keyIdFromServer(ctx, s))
      : s.saved?.key_id;
  if (keyId && isId(keyId)) vars.BREEZE_API_KEY_ID = keyId;
  else if (keyId) ctx.out.warn('BREEZE_API_KEY_ID is left out: the key id at hand is not a well-formed id.');
  if (s.server !== EMBEDDED) vars.BREEZE_SERVER = s.server;
  return vars;
}

/** The id of a key from BREEZE_API_KEY, as the server tells it; undefined (with a warning) when it cannot. */
async function keyIdFromServer(ctx: CliContext, s: Session): Promise<string | undefined> {
  try {
    const client = await ctx.client({ apiKey: s.apiKey });
    // one try: the variables are printed (or the command run) either way, so no waiting on retries
    const id = (await client.me({ retries: 0 })).auth.key_id;
    if (id === undefined)
      ctx.out.warn('BREEZE_API_KEY_ID is left out: the server gave no key id for BREEZE_API_KEY.');
    return id;
  } catch (err) {
    ctx.out.warn(
      `BREEZE_API_KEY_ID is left out: the server could not confirm BREEZE_API_KEY (${(err as Error).message})`,
    );
    return undefined;
  }
}

/** POSIX sh single quotes: nothing inside is special; a `'` becomes `'\''`. */
export function quoteSh(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** fish single quotes: only `\` and `'` are special, both escaped with a backslash. */
export function quoteFish(value: string): string {
  return `'${value.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

/** PowerShell single quotes (verbatim): a quote, including the typographic ones PowerShell accepts, is doubled. */
export function quotePowerShell(value: string): string {
  return `'${value.replace(/['\u2018\u2019\u201A\u201B]/g, (c) => c + c)}'`;
}

/**
 * dotenv: single quotes (literal in dotenv, python-dotenv, docker compose and a POSIX shell that
 * sources the file) when possible; else double quotes with `\`, `"`, `$`, backticks and newlines
 * escaped, so that sourcing the file with sh never runs a command.
 */
export function quoteDotenv(value: string): string {
  if (!/['\n\r]/.test(value)) return `'${value}'`;
  return `"${value
    .replace(/[\\"$`]/g, (c) => `\\${c}`)
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r')}"`;
}

/** The variables as text for `format` (no trailing newline). */
export function formatEnv(vars: Record<string, string>, format: EnvFormat): string {
  return formatEnvLines(vars, format).join('\n');
}

/** The variables as lines for `format` (what `out.data` prints: one string per line). */
export function formatEnvLines(vars: Record<string, string>, format: EnvFormat): string[] {
  const entries = Object.entries(vars);
  switch (format) {
    case 'sh':
      return entries.map(([k, v]) => `export ${k}=${quoteSh(v)}`);
    case 'fish':
      return entries.map(([k, v]) => `set -gx ${k} ${quoteFish(v)}`);
    case 'powershell':
      return entries.map(([k, v]) => `$env:${k} = ${quotePowerShell(v)}`);
    case 'dotenv':
      return entries.map(([k, v]) => `${k}=${quoteDotenv(v)}`);
    case 'json':
      return JSON.stringify(vars, null, 2).split('\n');
  }
}
