import { type ContextDeps, createContext, type GlobalOptions } from './context.js';
import { credentialEnv, type EnvFormat, formatEnvLines, usableKey } from './env-vars.js';
import { warnIfExpiring } from './expiry.js';

/**
 * `breeze token` and `breeze env` run in shell prompts and scripts, so they skip commander
 * entirely when argv is simple (known flags only); anything else (help, typos, unknown flags)
 * returns undefined and goes through the full program, which gives the proper usage errors.
 * `deps`: as for createContext (bin.ts passes an Output writing to the file descriptors).
 */
export async function tryFastPath(
  argv: readonly string[],
  deps: ContextDeps = {},
): Promise<number | undefined> {
  const globals: GlobalOptions = {};
  let command: 'token' | 'env' | undefined;
  let format: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const [flag, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const value = () => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined || v.startsWith('-')) throw new Error('missing value');
      return v;
    };
    try {
      if (flag === '--profile') globals.profile = value();
      else if (flag === '--server') globals.server = value();
      else if (flag === '--config-dir') globals.configDir = value();
      else if (flag === '--format' && command === 'env') format = value();
      else if (a === '--json') globals.json = true;
      else if (a === '--verbose') globals.verbose = true;
      else if (a === '--no-color') globals.color = false;
      else if ((a === 'token' || a === 'env') && !command) command = a;
      else return undefined;
    } catch {
      return undefined;
    }
  }
  if (!command) return undefined;
  if (format !== undefined && !['sh', 'fish', 'powershell', 'dotenv', 'json'].includes(format))
    return undefined;
  const ctx = await createContext(globals, deps);
  if (command === 'token') {
    const session = await ctx.session();
    const apiKey = usableKey(session);
    warnIfExpiring(ctx, session);
    if (ctx.json) ctx.out.json({ api_key: apiKey });
    else ctx.out.data(apiKey);
  } else {
    const vars = await credentialEnv(ctx);
    ctx.out.data(formatEnvLines(vars, ctx.json ? 'json' : ((format ?? 'sh') as EnvFormat)));
  }
  return ctx.exitCode;
}
