import { Command } from 'commander';
import type { CreatedKeyResponse, Scope } from '../../../core/types.js';
import type { StorageBackend } from '../../../credentials/types.js';
import type { CliContext } from '../../context.js';
import { UsageError } from '../../errors.js';
import { replaceStoredKey } from '../../session.js';
import type { CommandHost } from '../host.js';
import { parseScopes } from '../login.js';
import { durationArg, printNewKey, storeNewKey, withUnstoredKeyPrinted } from './common.js';

export interface KeysCreateOptions {
  name: string;
  scopes?: Scope[];
  /** seconds */
  expiresIn?: number;
  save?: boolean;
  /** `--project <id|name>`: a name is looked up in the current organization */
  project?: string;
}

/** Creates a key; with `save`, stores it as the current profile's key (`stored` says where). */
export async function runKeysCreate(
  opts: KeysCreateOptions,
  ctx: CliContext,
): Promise<{ created: CreatedKeyResponse; stored: StorageBackend | null }> {
  if (opts.expiresIn === 0) {
    throw new UsageError('--expires-in 0 would create a key that is already expired.', {
      hint: 'Leave --expires-in out for a key that never expires, or give a lifetime such as 30d.',
    });
  }
  const { client } = await ctx.authenticated();
  let projectId: string | undefined;
  // --project, else BREEZE_PROJECT / .breeze.json (breeze link)
  const projectRef = opts.project ?? ctx.project();
  if (projectRef !== undefined) {
    const { projectIdFor } = await import('../../teams.js');
    projectId = await projectIdFor(ctx, projectRef);
  }
  const created = await client.createKey({
    name: opts.name,
    scopes: opts.scopes,
    expires_in_s: opts.expiresIn,
    project_id: projectId,
  });
  let stored: StorageBackend | null = null;
  if (opts.save) {
    stored = await storeNewKey(ctx, created, '', async () => {
      const me = await client.withKey(created.api_key).me();
      return replaceStoredKey(ctx, created.api_key, created, me.user);
    });
  }
  return { created, stored };
}

export function createCreateCommand(host: CommandHost): Command {
  return new Command('create')
    .description('create a key; the plaintext is printed once')
    .requiredOption('--name <name>', 'a name to recognise it by')
    .option('--scopes <list>', 'comma-separated: read,write,admin,verify (default read)', parseScopes)
    .option('--expires-in <duration>', 'lifetime: 90s, 15m, 24h, 30d (default: never)', durationArg)
    .option('--save', "store it as this profile's key")
    .option('--project <id|name>', 'the project it belongs to (a name: of the current organization)')
    .addHelpText(
      'after',
      `
Examples:
  $ breeze keys create --name ci --scopes read,write --expires-in 30d
  $ breeze keys create --name laptop --scopes read,write,admin --save
  $ breeze keys create --name billing-ci --project billing`,
    )
    .action(async (opts: KeysCreateOptions, cmd: Command) => {
      const ctx = await host.context(cmd);
      const { created, stored } = await withUnstoredKeyPrinted(ctx, () => runKeysCreate(opts, ctx));
      printNewKey(ctx, created, stored);
    });
}
