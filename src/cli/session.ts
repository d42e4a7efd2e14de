import { isEmailLike, isId } from '../client/validate.js';
import { displayPrefix, isWellFormedApiKey } from '../core/api-key.js';
import type { ApiKeyInfo, UserInfo } from '../core/types.js';
import {
  KeychainUnavailableError,
  type StorageBackend,
  type StoragePreference,
} from '../credentials/types.js';
import { type CliContext, EMBEDDED, normaliseServer } from './context.js';
import { UserError } from './errors.js';

/** What every login flow hands back (browser, device, email code, --with-key). */
export interface LoginResult {
  /** the plaintext key, shown to nobody: it goes straight to the store */
  apiKey: string;
  key: ApiKeyInfo;
  user: UserInfo;
  /**
   * The login made this key (browser, email code, two-step, OIDC), as opposed to a key the user
   * pasted (`--with-key`): one that cannot be stored is deleted on the server again (saveLogin).
   */
  minted?: boolean;
}

export interface SavedLogin {
  profile: string;
  server: string;
  storage: StorageBackend;
  key: ApiKeyInfo;
  user: UserInfo;
  /** key id of the profile's previous key that was deleted on the server, if any */
  replacedKeyId: string | null;
}

/** How a key made by a login was made (API.md `created_via`): such a key is stored only by its profile. */
const LOGIN_MADE: ReadonlySet<string> = new Set(['cli_login', 'email_code', 'oidc']);

/** What `--json` prints for a saved login (CLI.md `breeze login --json`); never the key itself. */
export function savedLoginJson(saved: SavedLogin): Record<string, unknown> {
  return {
    profile: saved.profile,
    server: saved.server,
    user: saved.user,
    key_id: saved.key.key_id,
    prefix: saved.key.prefix,
    storage: saved.storage,
  };
}

/** `--storage` flag, else `BREEZE_STORAGE`, else auto. Invalid values are usage errors. */
export function storagePreference(ctx: CliContext, flag?: string): StoragePreference {
  const value = flag ?? (ctx.env.BREEZE_STORAGE || undefined);
  if (value === undefined) return 'auto';
  if (value === 'keychain' || value === 'file') return value;
  const fromEnv = flag === undefined;
  throw new UserError(`Invalid storage "${value}"${fromEnv ? ' in BREEZE_STORAGE' : ''}.`, {
    hint: fromEnv
      ? 'Set BREEZE_STORAGE to keychain or file (or unset it to choose automatically).'
      : 'Use --storage keychain or --storage file.',
    exitCode: 2,
  });
}

/**
 * The last gate before a key and its profile reach the keychain, credentials.json and config.json:
 * a well-formed key, a key id and user id of id shape, the key's own prefix, a plain email address.
 * The client checks server answers already; this also covers values assembled from several calls.
 */
function assertStorable(apiKey: string, key: ApiKeyInfo, user: UserInfo | undefined): void {
  const problem = !isWellFormedApiKey(apiKey)
    ? 'the key is not a well-formed Breeze API key'
    : !isId(key.key_id)
      ? 'the key id is not a well-formed id'
      : key.prefix !== displayPrefix(apiKey)
        ? 'the key prefix does not match the key'
        : user && !isId(user.id)
          ? 'the user id is not a well-formed id'
          : user && !isEmailLike(user.email)
            ? 'the user email is not an email address'
            : null;
  if (problem) {
    throw new UserError(`The server's answer cannot be stored: ${problem}. Nothing was saved.`, {
      hint: 'Check the server URL (--server / BREEZE_SERVER); a Breeze server never sends this.',
    });
  }
}

/**
 * Saves a fresh login for `ctx.profile` on `ctx.server()` — the one place every login flow ends:
 * stores the key (keychain, or file with a warning when the keychain is unusable; an error when
 * `keychain` was asked for), records the profile in config.json (never the secret), removes the
 * key from the other backend, deletes the profile's previous key on the server (re-login), and
 * prints one line naming the user, the key prefix and where it went.
 */
export async function saveLogin(
  ctx: CliContext,
  result: LoginResult,
  opts: { storage?: StoragePreference; quiet?: boolean } = {},
): Promise<SavedLogin> {
  assertStorable(result.apiKey, result.key, result.user);
  const server = ctx.server();
  const account = ctx.account(server);
  const preference = opts.storage ?? storagePreference(ctx);
  const { saved, previous, replacedKey } = await storeOrDiscard(ctx, result, (secretStored) =>
    ctx.config.locked(async () => {
      const before = ctx.config.profile(ctx.profile);
      // the key this login replaces, read before it is overwritten: it retires itself on its own
      // server (below), whoever logs in now, wherever, with whatever scopes
      const replacedKey =
        before && before.key_id !== result.key.key_id
          ? await ctx.credentials.readStored(ctx.account(before.server), before.storage)
          : null;
      let storage: StorageBackend;
      try {
        storage = await ctx.credentials.save(account, result.apiKey, preference, { locked: true });
      } catch (err) {
        if (err instanceof KeychainUnavailableError) {
          throw new UserError(`Cannot store the key in the OS keychain: ${err.message}`, {
            hint: 'Use --storage file (or BREEZE_STORAGE=file) to keep it in credentials.json (0600).',
          });
        }
        throw err;
      }
      secretStored();
      // The other backend must not keep a stale copy that could shadow or outlive this one.
      const other: StorageBackend = storage === 'file' ? 'keychain' : 'file';
      if (before && (before.storage === other || before.server !== server)) {
        await ctx.credentials.remove(ctx.account(before.server), before.storage, { locked: true });
      }
      await ctx.config.update(
        (data) => {
          data.profiles[ctx.profile] = {
            server,
            key_id: result.key.key_id,
            prefix: result.key.prefix,
            email: result.user.email,
            user_id: result.user.id,
            storage,
            // the same user logging in again keeps the organization they switched to
            org_id:
              before?.server === server && before.user_id === result.user.id ? before.org_id : undefined,
            expires_at: result.key.expires_at ?? null,
          };
        },
        { locked: true },
      );
      return { saved: storage, previous: before, replacedKey };
    }),
  );

  const replaced =
    previous && previous.key_id !== result.key.key_id
      ? await retireReplaced(ctx, previous, replacedKey, result.apiKey, server)
      : null;
  const replacedKeyId = replaced?.deleted ? previous!.key_id : null;
  const keptKeyId = replaced?.kept ? previous!.key_id : null;
  if (!opts.quiet) {
    const where = saved === 'keychain' ? 'the OS keychain' : `${ctx.configDir}/credentials.json`;
    ctx.out.success(
      `Logged in as ${result.user.email} with key ${result.key.prefix}… (${result.key.key_id}), stored in ${where}` +
        (ctx.profile !== 'default' ? ` for profile "${ctx.profile}".` : '.'),
    );
    // a key that stops working must not do so unannounced (a script or another machine may use it)
    if (replacedKeyId)
      ctx.out.info(`Deleted this profile's previous key ${replacedKeyId} on the server: it no longer works.`);
    if (keptKeyId)
      ctx.out.info(
        `This profile's previous key ${keptKeyId} was not made by a login, so it was kept and still works: ` +
          `"breeze keys delete ${keptKeyId}" deletes it if nothing else uses it.`,
      );
  }
  return { profile: ctx.profile, server, storage: saved, key: result.key, user: result.user, replacedKeyId };
}

/**
 * The key a re-login replaced: no longer stored by its profile. One a login made exists nowhere
 * else and would live on unseen: it is deleted on its server. One made otherwise (pasted with
 * --with-key, created with "keys create", a rotation's) may be in use elsewhere (CI, another
 * machine): kept. The key itself asks and deletes (a key may always read and delete itself), on
 * the server it belongs to, so a login as another user, on another server or with narrower scopes
 * retires it too; when its plaintext could not be read, the new key does, on the same server.
 */
async function retireReplaced(
  ctx: CliContext,
  previous: { server: string; key_id: string },
  replacedKey: string | null,
  newKey: string,
  server: string,
): Promise<{ deleted?: true; kept?: true } | null> {
  const home = normaliseServer(previous.server);
  if (!replacedKey && home !== server) {
    ctx.out.warn(
      `The previous key ${previous.key_id} (of ${home === EMBEDDED ? 'the embedded server' : home}) could not be read to retire it: "breeze keys delete ${previous.key_id}" there deletes it if nothing uses it.`,
    );
    return null;
  }
  try {
    const client = await ctx.client({ apiKey: replacedKey ?? newKey, server: home });
    const old = await client.getKey(previous.key_id);
    if (!LOGIN_MADE.has(old.created_via)) return { kept: true };
    await client.deleteKey(previous.key_id);
    return { deleted: true };
  } catch (err) {
    const status = (err as { status?: number }).status;
    // 401 (asked with itself) or 404: already gone, or refused: nothing left to retire
    if (status !== 401 && status !== 404) {
      ctx.out.warn(
        `Could not delete the previous key ${previous.key_id} on ${home === EMBEDDED ? 'the embedded server' : home} (${(err as Error).message}).`,
      );
    }
    return null;
  }
}

/**
 * Runs `store`; when it fails before the secret is stored, for a key the login made, that key is
 * stored nowhere and nobody has seen it: it is deleted on the server (best effort, said on stderr)
 * before the error goes on, so a failed login leaves no live key behind. Once the secret is stored
 * (a later step failed: config.json), the key is kept: it is what the keychain or file now holds. A
 * pasted key (`--with-key`) is the user's own: always kept.
 */
async function storeOrDiscard<T>(
  ctx: CliContext,
  result: LoginResult,
  /** calls `secretStored` once the key is in the keychain or file: a later failure keeps it */
  store: (secretStored: () => void) => Promise<T>,
): Promise<T> {
  let stored = false;
  try {
    return await store(() => {
      stored = true;
    });
  } catch (err) {
    if (result.minted && !stored) await discardLoginKey(ctx, result.apiKey, result.key.key_id);
    throw err;
  }
}

/** Deletes a key a login made and could not keep (best effort), and says so on stderr. */
export async function discardLoginKey(ctx: CliContext, apiKey: string, keyId: string): Promise<void> {
  try {
    await (await ctx.client({ apiKey })).deleteKey(keyId);
    ctx.out.info(`The key this login made (${keyId}) could not be stored, so it was deleted on the server.`);
  } catch (cleanup) {
    ctx.out.warn(
      `The key this login made (${keyId}) could not be stored, nor deleted on the server (${(cleanup as Error).message}): delete it with "breeze keys delete ${keyId}" once logged in.`,
    );
  }
}

/**
 * Replaces the stored key of the current profile in place (rotation of the profile's own key):
 * same backend, same profile; config.json gets the new key id and prefix.
 */
export async function replaceStoredKey(
  ctx: CliContext,
  apiKey: string,
  key: ApiKeyInfo,
  user?: UserInfo,
): Promise<StorageBackend> {
  assertStorable(apiKey, key, user);
  const server = ctx.server();
  return ctx.config.locked(async () => {
    const before = ctx.config.profile(ctx.profile);
    const preference: StoragePreference = before?.server === server ? before.storage : storagePreference(ctx);
    const storage = await ctx.credentials.save(ctx.account(server), apiKey, preference, { locked: true });
    await ctx.config.update(
      (data) => {
        const prev = data.profiles[ctx.profile];
        data.profiles[ctx.profile] = {
          server,
          key_id: key.key_id,
          prefix: key.prefix,
          email: user?.email ?? (prev?.server === server ? prev.email : ''),
          user_id: user?.id ?? (prev?.server === server ? prev.user_id : undefined),
          storage,
          org_id: prev?.server === server && (!user || user.id === prev.user_id) ? prev.org_id : undefined,
          expires_at: key.expires_at ?? null,
        };
      },
      { locked: true },
    );
    return storage;
  });
}
