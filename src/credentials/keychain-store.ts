import { type CredentialStore, KeychainUnavailableError } from './types.js';

export const KEYCHAIN_SERVICE = 'breeze';
export const DEFAULT_KEYCHAIN_TIMEOUT_MS = 3000;

type AsyncEntryCtor = typeof import('@napi-rs/keyring').AsyncEntry;

/**
 * The OS keychain through @napi-rs/keyring (Secret Service on Linux, Keychain on macOS, Credential
 * Manager on Windows), service `breeze`, account `<profile>@<server>`.
 *
 * Every call is bounded by `timeoutMs`: the async entry points run on libuv's thread pool, and a
 * keyring that never answers (a D-Bus peer that accepts and stalls, a locked collection waiting for
 * a prompt nobody sees) is abandoned after the timeout. The stuck pool thread cannot block exit: the
 * CLI leaves through `process.exit`.
 */
export class KeychainCredentialStore implements CredentialStore {
  readonly backend = 'keychain' as const;
  private entryCtor?: Promise<AsyncEntryCtor>;

  constructor(private readonly opts: { service?: string; timeoutMs?: number } = {}) {}

  private get service(): string {
    return this.opts.service ?? KEYCHAIN_SERVICE;
  }

  private async entry(account: string) {
    this.entryCtor ??= import('@napi-rs/keyring').then((m) => m.AsyncEntry);
    let Ctor: AsyncEntryCtor;
    try {
      Ctor = await this.entryCtor;
    } catch (err) {
      throw new KeychainUnavailableError(
        `The OS keychain module could not be loaded: ${(err as Error).message}`,
      );
    }
    return new Ctor(this.service, account);
  }

  private async bounded<T>(what: string, op: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const timeoutMs = this.opts.timeoutMs ?? DEFAULT_KEYCHAIN_TIMEOUT_MS;
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        ac.abort();
        reject(
          new KeychainUnavailableError(`The OS keychain did not answer within ${timeoutMs} ms (${what}).`),
        );
      }, timeoutMs);
    });
    try {
      return await Promise.race([op(ac.signal), timeout]);
    } catch (err) {
      if (err instanceof KeychainUnavailableError) throw err;
      throw new KeychainUnavailableError(`The OS keychain cannot be used (${what}): ${firstLine(err)}`);
    } finally {
      clearTimeout(timer);
    }
  }

  async get(account: string): Promise<string | null> {
    const entry = await this.entry(account);
    const value = await this.bounded('read', (signal) => entry.getPassword(signal));
    return value ?? null;
  }

  async set(account: string, secret: string): Promise<void> {
    const entry = await this.entry(account);
    await this.bounded('write', (signal) => entry.setPassword(secret, signal));
    // Some backends accept a write they cannot read back (no collection, locked): make sure it stuck.
    const back = await this.bounded('read', (signal) => entry.getPassword(signal));
    if (back !== secret) throw new KeychainUnavailableError('The OS keychain did not keep the key.');
  }

  async delete(account: string): Promise<boolean> {
    const entry = await this.entry(account);
    return this.bounded('delete', async (signal) => {
      const existed = (await entry.getPassword(signal)) != null;
      if (!existed) return false;
      await entry.deleteCredential(signal);
      return true;
    });
  }
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0] ?? msg;
}
