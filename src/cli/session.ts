import { isEmailLike, isId } from '../client/validate.js';
import { displayPrefix, isWellFormedApiKey } from '../core/api-key.js';
import type { ApiKeyInfo, UserInfo } from '../core/types.js';
import {
  KeychainUnavailableError,
  type StorageBackend,
  type StoragePreference,
} from '../credentials/types.js';
import { type CliContext, EMBEDDED, normaliseServer } from './context.js';
import { InterruptedError, UserError } from './errors.js';

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
            minted: result.minted === true,
          };
        },
        { locked: true },
      );
      return { saved: storage, previous: before, replacedKey };
    }),
  );

  if (!opts.quiet) {
    const where = saved === 'keychain' ? 'the OS keychain' : `${ctx.configDir}/credentials.json`;
    ctx.out.success(
      `Logged in as ${result.user.email} with key ${result.key.prefix}… (${result.key.key_id}), stored in ${where}` +
        (ctx.profile !== 'default' ? ` for profile "${ctx.profile}".` : '.'),
    );
  }
  // the new key is stored and said so; then the replaced one is retired (best effort, bounded)
  const replaced =
    previous && previous.key_id !== result.key.key_id
      ? await retireReplaced(ctx, previous, replacedKey, result.apiKey, server)
      : null;
  const replacedKeyId = replaced?.deleted ? previous!.key_id : null;
  if (!opts.quiet && previous) {
    // a key that stops working must not do so unannounced (a script or another machine may use it)
    if (replaced?.deleted)
      ctx.out.info(
        `Deleted this profile's previous key ${previous.key_id} on the server: it no longer works.`,
      );
    if (replaced?.kept)
      ctx.out.info(
        `This profile's previous key ${previous.key_id} was not made by a login for it (pasted, or made by "keys create" or "keys rotate"), so it was kept and still works: ` +
          `"breeze keys delete ${previous.key_id}" deletes it if nothing else uses it.`,
      );
  }
  return { profile: ctx.profile, server, storage: saved, key: result.key, user: result.user, replacedKeyId };
}

/**
 * The key a re-login replaced: no longer stored by its profile. One a login made for this profile
 * (and nobody saw) exists nowhere else and would live on unseen: it is deleted on its server. One
 * pasted with --with-key or made by "keys create"/"keys rotate" (which print it) may be in use
 * elsewhere (CI, another machine): kept. For a profile saved before that was recorded, the key's
 * `created_via` decides. The key itself deletes itself (a key may always), on the server it belongs
 * to, so a login as another user, on another server or with narrower scopes retires it too; when it
 * cannot (disabled, expired: refused; its plaintext unreadable), the new key does, on the same
 * server. Best effort and bounded: one try of 5 s per request; an interrupt still stops the command.
 */
async function retireReplaced(
  ctx: CliContext,
  previous: { server: string; key_id: string; minted?: boolean },
  replacedKey: string | null,
  newKey: string,
  server: string,
): Promise<{ deleted?: true; kept?: true } | null> {
  if (previous.minted === false) return { kept: true };
  const home = normaliseServer(previous.server);
  const where = home === EMBEDDED ? 'the embedded server' : home;
  const askers = [replacedKey, home === server ? newKey : null].filter((k): k is string => k !== null);
  if (askers.length === 0) {
    ctx.out.warn(
      `The previous key ${previous.key_id} (of ${where}) could not be read to retire it: "breeze keys delete ${previous.key_id}" there deletes it if nothing uses it.`,
    );
    return null;
  }
  let lastError: unknown;
  for (const apiKey of askers) {
    try {
      const client = await ctx.client({ apiKey, server: home, timeoutMs: 5000, retries: 0 });
      if (previous.minted !== true) {
        const old = await client.getKey(previous.key_id);
        if (!LOGIN_MADE.has(old.created_via)) return { kept: true };
      }
      await client.deleteKey(previous.key_id);
      return { deleted: true };
    } catch (err) {
      if (err instanceof InterruptedError) throw err;
      const status = (err as { status?: number }).status;
      // 404: already gone (or not this user's to see); 401: the key refused itself (disabled,
      // expired, deleted): the next asker, the new key, may still delete it; when it cannot see it
      // either (another user), the refusal is what to tell
      if (status === 404) {
        if ((lastError as { status?: number } | undefined)?.status === 401) break;
        return null;
      }
      lastError = err;
      if (status !== 401) break;
    }
  }
  const status = (lastError as { status?: number }).status;
  ctx.out.warn(
    status === 401
      ? `The previous key ${previous.key_id} (of ${where}) is refused there (disabled or expired) and could not be deleted: "breeze keys delete ${previous.key_id}" there deletes it.`
      : `Could not delete the previous key ${previous.key_id} on ${where} (${(lastError as Error).message}).`,
  );
  return null;
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
          // made by keys create / rotate, which print it: something else may hold it
          minted: false,
        };
      },
      { locked: true },
    );
    return storage;
  });
}
