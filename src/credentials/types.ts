/** Where a stored key lives. */
export type StorageBackend = 'keychain' | 'file';
/** Where the key in use came from: `env` is `BREEZE_API_KEY`. */
export type CredentialSource = 'env' | StorageBackend;
/** What the user asked for: a backend, or `auto` (keychain when usable, else file with a warning). */
export type StoragePreference = StorageBackend | 'auto';

/** One secret per account (`<profile>@<server>`). Implementations: keychain and file. */
export interface CredentialStore {
  readonly backend: StorageBackend;
  /** the secret, or null when there is none (or the keychain cannot be reached for reading) */
  get(account: string): Promise<string | null>;
  /** stores the secret; throws `KeychainUnavailableError` when the OS keychain cannot be used */
  set(account: string, secret: string): Promise<void>;
  /** true when something was deleted */
  delete(account: string): Promise<boolean>;
}

/** The OS keychain cannot be used (no Secret Service, locked, headless, timed out). */
export class KeychainUnavailableError extends Error {
  override name = 'KeychainUnavailableError';
}

/** The keychain account of a profile: `<profile>@<server>`. */
export function accountName(profile: string, server: string): string {
  return `${profile}@${server}`;
}

export function parseStoragePreference(value: string | undefined): StoragePreference | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === 'keychain' || value === 'file' || value === 'auto') return value;
  return undefined;
}
