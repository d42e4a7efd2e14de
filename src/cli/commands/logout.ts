import { Command } from 'commander';
import { KeychainUnavailableError } from '../../credentials/types.js';
import { type CliContext, normaliseServer } from '../context.js';
import { UsageError, UserError } from '../errors.js';
import type { CommandHost } from './host.js';

export interface LogoutResult {
  profile: string;
  /** the key id that was logged out, null when the profile had none */
  key_id: string | null;
  /** the key was deleted on the server */
  deleted_on_server: boolean;
  /** a local copy was removed */
  removed_locally: boolean;
}

/**
 * Deletes the profile's key on the server (unless `keepKey`), then the local copy and the profile.
 * BREEZE_API_KEY is never what gets deleted: logout is about the stored key.
 */
export async function runLogout(opts: { keepKey?: boolean }, ctx: CliContext): Promise<LogoutResult> {
  const saved = ctx.config.profile(ctx.profile);
  const result: LogoutResult = {
    profile: ctx.profile,
    key_id: saved?.key_id ?? null,
    deleted_on_server: false,
    removed_locally: false,
  };
  if (!saved) return result;
  // the key may only ever be sent to the server it belongs to
  if (!opts.keepKey && normaliseServer(saved.server) !== ctx.server()) {
    throw new UsageError(`Profile "${ctx.profile}" is logged in to ${saved.server}, not ${ctx.server()}.`, {
      hint: `Run "breeze logout" without --server / BREEZE_SERVER, or with --server ${saved.server}.`,
    });
  }
  const account = ctx.account(saved.server);
  if (!opts.keepKey) {
    let apiKey: string | null;
    try {
      apiKey = await ctx.credentials.readStoredOrThrow(account, saved.storage);
    } catch (err) {
      // without the key nothing can be deleted: forgetting the profile would leave a live key
      // behind, named nowhere (in a keychain that may answer again later)
      if (!(err instanceof KeychainUnavailableError)) throw err;
      throw new UserError(`Could not read the key from the OS keychain: ${err.message}`, {
        hint: 'Nothing was removed and the key still works. Retry once the keychain answers (is it locked?), or pass --keep-key to only forget the profile here.',
        cause: err,
      });
    }
    if (apiKey) {
      try {
        const client = await ctx.client({ apiKey });
        await client.deleteKey(saved.key_id);
        result.deleted_on_server = true;
      } catch (err) {
        const status = (err as { status?: number }).status;
        // 401/404: the key is already gone (or refused) on the server: nothing left to revoke
        if (status !== 401 && status !== 404) {
          throw new UserError(`Could not delete the key on the server: ${(err as Error).message}`, {
            hint: 'Nothing was removed. Retry, or pass --keep-key to only forget it on this machine.',
            cause: err,
          });
        }
      }
    }
  }
  await ctx.config.locked(async () => {
    result.removed_locally = await ctx.credentials.remove(account, saved.storage, { locked: true });
    await ctx.config.update(
      (data) => {
        delete data.profiles[ctx.profile];
      },
      { locked: true },
    );
  });
  return result;
}

export function createCommand(host: CommandHost): Command {
  return new Command('logout')
    .description("delete the profile's key on the server, then the local copy")
    .option('--keep-key', 'keep the key alive on the server; only forget it here')
    .addHelpText(
      'after',
      `
Examples:
  $ breeze logout
  $ breeze logout --keep-key --profile ci`,
    )
    .action(async (opts: { keepKey?: boolean }, cmd: Command) => {
      const ctx = await host.context(cmd);
      const r = await runLogout(opts, ctx);
      if (ctx.json) ctx.out.json(r);
      if (!r.key_id) ctx.out.info(`Not logged in (profile "${r.profile}"): nothing to do.`);
      else
        ctx.out.success(
          `Logged out of profile "${r.profile}"${r.deleted_on_server ? `; key ${r.key_id} deleted on the server` : opts.keepKey ? `; key ${r.key_id} kept on the server` : ''}.`,
        );
      if (ctx.env.BREEZE_API_KEY) ctx.out.warn('BREEZE_API_KEY is still set in this environment.');
    });
}
