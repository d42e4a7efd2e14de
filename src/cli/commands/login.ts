import { Command, Option } from 'commander';
import { isWellFormedApiKey } from '../../core/api-key.js';
import { normaliseScopes, SCOPES, type Scope } from '../../core/types.js';
import type { CliContext } from '../context.js';
import { NotAuthenticatedError, UsageError } from '../errors.js';
import type { LoginOptions } from '../login/options.js';
import {
  type LoginResult,
  type SavedLogin,
  savedLoginJson,
  saveLogin,
  storagePreference,
} from '../session.js';
import type { CommandHost } from './host.js';

export type { LoginOptions };

/** Runs the chosen login flow and saves the result through `saveLogin`. */
export async function runLogin(opts: LoginOptions, ctx: CliContext): Promise<SavedLogin> {
  const storage = storagePreference(ctx, opts.storage);
  let result: LoginResult;
  if (opts.withKey) {
    result = await loginWithKey(ctx);
  } else if (opts.email !== undefined || opts.code !== undefined) {
    const { runEmailLogin } = await import('../login/email.js');
    result = await runEmailLogin(opts, ctx);
  } else {
    const { runBrowserLogin } = await import('../login/browser.js');
    result = await runBrowserLogin(opts, ctx);
  }
  return saveLogin(ctx, result, { storage });
}

/** Reads all of stdin (the key may come from a pipe or a file). */
async function readStdin(signal: AbortSignal): Promise<string> {
  const chunks: Buffer[] = [];
  const onAbort = () => process.stdin.destroy();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `--with-key`: a key from stdin (or a hidden prompt on a terminal), checked with `GET /v1/me`. */
export async function loginWithKey(ctx: CliContext): Promise<LoginResult> {
  const raw = process.stdin.isTTY
    ? await ctx.prompts.password('API key', { flag: '--with-key with the key on stdin' })
    : await readStdin(ctx.signal);
  const apiKey = raw.trim();
  if (!apiKey)
    throw new UsageError('No key on stdin.', { hint: 'Pipe it in: breeze login --with-key < key.txt' });
  if (!isWellFormedApiKey(apiKey)) {
    throw new NotAuthenticatedError(
      'That is not a Breeze API key (expected brz_ followed by 46 letters and digits).',
      {
        hint: 'Check for a copy-paste error, or create a key with "breeze keys create".',
      },
    );
  }
  const client = await ctx.client({ apiKey });
  const me = await client.me();
  if (me.auth.type !== 'api_key' || !me.auth.key_id) {
    throw new NotAuthenticatedError('The server did not accept this as an API key.');
  }
  const key = await client.getKey(me.auth.key_id);
  return { apiKey, key, user: me.user };
}

function parseScopes(value: string): Scope[] {
  const list = value
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = list.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (unknown.length)
    throw new UsageError(`Unknown scope(s): ${unknown.join(', ')}.`, { hint: `Use ${SCOPES.join(', ')}.` });
  return normaliseScopes(list);
}

export { parseScopes };

export function createCommand(host: CommandHost): Command {
  return new Command('login')
    .description('log in and store an API key for this profile')
    .option('--no-browser', 'do not open a browser: print the URL and code (SSH, headless)')
    .option('--email [addr]', 'log in with a code mailed to this address')
    .option(
      '--code <code>',
      'the mailed code; without a terminal, "login --email <addr>" mails it and exits 2, then this finishes (10 min)',
    )
    .option('--with-key', 'read an existing key from stdin and check it')
    .option('--oidc', "CI: trade the job's OIDC token (GitHub Actions, GitLab) for a short-lived key")
    .option('--audience <aud>', '--oidc: audience asked of GitHub Actions (default: the server URL)')
    .option('--org <org_id>', '--oidc: the organization whose trust applies')
    .option('--oidc-token-file <file>', '--oidc: read the OIDC token from this file')
    .option('--save', '--oidc: store the key in the profile (default: print it, store nothing)')
    .option(
      '--start',
      'two-step login (agents, scripts): create the login, print its id, code and URL, return',
    )
    .option('--complete [login_id]', 'two-step login: exchange a login begun with --start once approved')
    .option('--wait', 'with --complete: wait for the approval instead of failing')
    .option('--name <key name>', 'name of the key to create (default "<hostname> (breeze login)")')
    .option('--scopes <list>', 'comma-separated scopes: read,write,admin')
    .addOption(
      new Option('--storage <backend>', 'where to store the key (env BREEZE_STORAGE)').choices([
        'keychain',
        'file',
      ]),
    )
    .addHelpText(
      'after',
      `
Examples:
  $ breeze login                              opens the browser, waits for your approval
  $ breeze login --no-browser                 prints a URL and a code to enter elsewhere
  $ breeze login --email me@example.com       sends a code by mail, then asks for it
  $ breeze login --email me@example.com --code 09HD74KM
                                              finishes a code mailed by an earlier non-interactive
                                              run (its id waits in the config dir for 10 minutes)
  $ breeze login --with-key < key.txt         stores an existing key after checking it
  $ breeze --server https://breeze.example.com login --storage file
  $ breeze --server https://breeze.example.com login --oidc
                                              CI: prints a short-lived key for the job's OIDC token
  $ breeze login --start --json               two steps (agents): prints {login_id, user_code,
  $ breeze login --complete --wait            verification_uri_complete, expires_at}; a person
                                              approves; --complete stores the key`,
    )
    .action(async (raw: Record<string, unknown>, cmd: Command) => {
      const ctx = await host.context(cmd);
      if (raw.oidc) {
        if (raw.withKey || raw.email !== undefined || raw.code !== undefined || raw.start || raw.complete) {
          throw new UsageError(
            '--oidc cannot be combined with --with-key, --email, --code, --start or --complete.',
          );
        }
        if (raw.name !== undefined || raw.scopes !== undefined) {
          throw new UsageError('--name and --scopes do not apply to --oidc.', {
            hint: 'The trust policy on the server sets the scopes of the key a CI job gets.',
          });
        }
        const { runOidcLogin } = await import('../login/oidc.js');
        await runOidcLogin(
          {
            audience: raw.audience as string | undefined,
            org: raw.org as string | undefined,
            tokenFile: raw.oidcTokenFile as string | undefined,
            save: Boolean(raw.save),
            storage: raw.storage as 'keychain' | 'file' | undefined,
          },
          ctx,
        );
        return;
      }
      if (
        raw.save ||
        raw.audience !== undefined ||
        raw.org !== undefined ||
        raw.oidcTokenFile !== undefined
      ) {
        throw new UsageError('--save, --audience, --org and --oidc-token-file go with --oidc.');
      }
      const opts: LoginOptions = {
        browser: raw.browser !== false,
        email: raw.email as string | true | undefined,
        code: raw.code as string | undefined,
        withKey: Boolean(raw.withKey),
        name: raw.name as string | undefined,
        scopes: typeof raw.scopes === 'string' ? parseScopes(raw.scopes) : undefined,
        storage: raw.storage as 'keychain' | 'file' | undefined,
      };
      if (raw.start || raw.complete !== undefined || raw.wait) {
        const other = [
          ['--with-key', opts.withKey],
          ['--email', opts.email !== undefined],
          ['--code', opts.code !== undefined],
          ['--no-browser', !opts.browser],
        ].flatMap(([flag, on]) => (on ? [flag as string] : []));
        const { runTwoStepLogin } = await import('../login/two-step.js');
        const complete = raw.complete as string | true | undefined;
        await runTwoStepLogin(
          { start: Boolean(raw.start), complete, wait: Boolean(raw.wait), other },
          opts,
          ctx,
        );
        return;
      }
      if (opts.withKey && (opts.email !== undefined || opts.code !== undefined)) {
        throw new UsageError('--with-key cannot be combined with --email or --code.');
      }
      // an existing key keeps its name and scopes: never let "--scopes read" look like it narrowed one
      if (opts.withKey && (opts.name !== undefined || opts.scopes !== undefined)) {
        throw new UsageError('--name and --scopes do not apply to --with-key: the key already exists.', {
          hint: 'Drop them, or make a key with those settings first: breeze keys create --name <n> --scopes <list>.',
        });
      }
      const saved = await runLogin(opts, ctx);
      if (ctx.json) {
        ctx.out.json(savedLoginJson(saved));
      }
    });
}
