import { FileCredentialStore } from './file-store.js';
import { DEFAULT_KEYCHAIN_TIMEOUT_MS, KeychainCredentialStore } from './keychain-store.js';
import {
  type CredentialSource,
  type CredentialStore,
  KeychainUnavailableError,
  type StorageBackend,
  type StoragePreference,
} from './types.js';

export interface ResolvedCredential {
  apiKey: string;
  source: CredentialSource;
  /** BREEZE_API_KEY is set while the profile also has a stored key, which it hides */
  shadowsStored: boolean;
}

export interface CredentialManagerOptions {
  configDir: string;
  env: NodeJS.ProcessEnv;
  /** one-line warnings for people (stderr) */
  warn: (message: string) => void;
  /** bound on every keychain call; default `BREEZE_KEYCHAIN_TIMEOUT_MS` or 3 s */
  keychainTimeoutMs?: number;
}

/**
 * The credential store behind one interface: `BREEZE_API_KEY` on top of the keychain and the file.
 * The keychain module is loaded only when a profile actually uses it.
 */
export class CredentialManager {
  private keychain?: KeychainCredentialStore;
  constructor(private readonly opts: CredentialManagerOptions) {}

  /** `BREEZE_API_KEY`, trimmed, when set and non-empty */
  envKey(): string | undefined {
    const v = this.opts.env.BREEZE_API_KEY?.trim();
    return v ? v : undefined;
  }

  /** The store for a backend. `locked`: the caller already holds the config directory lock. */
  store(backend: StorageBackend, opts: { locked?: boolean } = {}): CredentialStore {
    if (backend === 'file') return new FileCredentialStore(this.opts.configDir, opts);
    this.keychain ??= new KeychainCredentialStore({
      timeoutMs:
        this.opts.keychainTimeoutMs ??
        (Number(this.opts.env.BREEZE_KEYCHAIN_TIMEOUT_MS) || DEFAULT_KEYCHAIN_TIMEOUT_MS),
    });
    return this.keychain;
  }

  /** The stored key of an account in `backend`; null when absent or the keychain cannot be read. */
  async readStored(account: string, backend: StorageBackend): Promise<string | null> {
    try {
      return await this.store(backend).get(account);
    } catch (err) {
      if (err instanceof KeychainUnavailableError) {
        this.opts.warn(`Warning: ${err.message}`);
        return null;
      }
      throw err;
    }
  }

  /** The stored key of an account in `backend`, null when absent; a keychain that cannot answer throws `KeychainUnavailableError`. */
  async readStoredOrThrow(account: string, backend: StorageBackend): Promise<string | null> {
    return this.store(backend).get(account);
  }

  /**
   * The key to use: `BREEZE_API_KEY` when set, else the stored one of `account` in `backend` (the
   * profile's recorded storage). Null when there is none.
   */
  async resolve(account: string, backend: StorageBackend | undefined): Promise<ResolvedCredential | null> {
    const fromEnv = this.envKey();
    if (fromEnv) {
      const stored = backend ? await this.readStoredQuietly(account, backend) : null;
      return { apiKey: fromEnv, source: 'env', shadowsStored: stored !== null && stored !== fromEnv };
    }
    if (!backend) return null;
    const apiKey = await this.readStored(account, backend);
    return apiKey ? { apiKey, source: backend, shadowsStored: false } : null;
  }

  private async readStoredQuietly(account: string, backend: StorageBackend): Promise<string | null> {
    try {
      return await this.store(backend).get(account);
    } catch {
      return null;
    }
  }

  /**
   * Stores `secret` for `account`. `auto`: the keychain when usable, else the file with a one-line
   * warning. `keychain`: throws `KeychainUnavailableError` when it cannot be used. Returns where it
   * went.
   */
  async save(
    account: string,
    secret: string,
    preference: StoragePreference,
    opts: { locked?: boolean } = {},
  ): Promise<StorageBackend> {
    if (preference === 'file') {
      await this.store('file', opts).set(account, secret);
      return 'file';
    }
    try {
      await this.store('keychain').set(account, secret);
      return 'keychain';
    } catch (err) {
      if (!(err instanceof KeychainUnavailableError) || preference === 'keychain') throw err;
      this.opts.warn(
        `Warning: ${err.message.replace(/\.?$/, '.')} Storing the key in ${this.opts.configDir}/credentials.json (0600) instead.`,
      );
      await this.store('file', opts).set(account, secret);
      return 'file';
    }
  }

  /** Deletes the stored key of `account` in `backend`; a keychain that cannot be reached is reported, not fatal. */
  async remove(account: string, backend: StorageBackend, opts: { locked?: boolean } = {}): Promise<boolean> {
    try {
      return await this.store(backend, opts).delete(account);
    } catch (err) {
      if (err instanceof KeychainUnavailableError) {
        this.opts.warn(`Warning: could not remove the key from the OS keychain: ${err.message}`);
        return false;
      }
      throw err;
    }
  }
}
