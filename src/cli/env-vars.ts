import { displayPrefix } from '../core/api-key.js';
import { type CliContext, EMBEDDED, type Session } from './context.js';

export const ENV_FORMATS = ['sh', 'fish', 'powershell', 'dotenv', 'json'] as const;
export type EnvFormat = (typeof ENV_FORMATS)[number];

/**
 * The variables `env` prints and `run` injects: BREEZE_API_KEY, BREEZE_API_KEY_ID (when known
 * without a network call) and BREEZE_SERVER (unless embedded). Ordered, for stable output.
 */
export async function credentialEnv(ctx: CliContext, session?: Session): Promise<Record<string, string>> {
  const s = session ?? (await ctx.session());
  const vars: Record<string, string> = { BREEZE_API_KEY: s.apiKey };
  const keyId =
    s.source === 'env'
      ? ctx.env.BREEZE_API_KEY_ID ||
        (s.saved && s.saved.prefix === displayPrefix(s.apiKey) ? s.saved.key_id : undefined)
      : s.saved?.key_id;
  if (keyId) vars.BREEZE_API_KEY_ID = keyId;
  if (s.server !== EMBEDDED) vars.BREEZE_SERVER = s.server;
  return vars;
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
 * dotenv: single quotes (literal in dotenv, python-dotenv and docker compose) when possible; else
 * double quotes with `\`, `"`, `$` and newlines escaped.
 */
export function quoteDotenv(value: string): string {
  if (!/['\n\r]/.test(value)) return `'${value}'`;
  return `"${value
    .replace(/[\\"$]/g, (c) => `\\${c}`)
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r')}"`;
}

/** The variables as text for `format` (no trailing newline). */
export function formatEnv(vars: Record<string, string>, format: EnvFormat): string {
  const entries = Object.entries(vars);
  switch (format) {
    case 'sh':
      return entries.map(([k, v]) => `export ${k}=${quoteSh(v)}`).join('\n');
    case 'fish':
      return entries.map(([k, v]) => `set -gx ${k} ${quoteFish(v)}`).join('\n');
    case 'powershell':
      return entries.map(([k, v]) => `$env:${k} = ${quotePowerShell(v)}`).join('\n');
    case 'dotenv':
      return entries.map(([k, v]) => `${k}=${quoteDotenv(v)}`).join('\n');
    case 'json':
      return JSON.stringify(vars, null, 2);
  }
}
