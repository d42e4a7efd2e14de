import { join } from 'node:path';
import { hasRecordField, readJsonFile, withDirLock, writeFileAtomicSync } from './atomic-file.js';
import type { CredentialStore } from './types.js';

export const CREDENTIALS_FILE = 'credentials.json';

interface CredentialsData {
  version: 1;
  /** account (`<profile>@<server>`) -> key */
  credentials: Record<string, string>;
}

/**
 * Keys in `<config dir>/credentials.json` (0600, directory 0700). Reads are lock-free (files are
 * replaced atomically); writes take the directory lock unless the caller already holds it
 * (`locked: true`).
 */
export class FileCredentialStore implements CredentialStore {
  readonly backend = 'file' as const;
  readonly path: string;
  constructor(
    private readonly configDir: string,
    private readonly opts: { locked?: boolean } = {},
  ) {
    this.path = join(configDir, CREDENTIALS_FILE);
  }

  private read(): CredentialsData {
    return (
      readJsonFile<CredentialsData>(this.path, hasRecordField('credentials')) ?? {
        version: 1,
        credentials: {},
      }
    );
  }

  private async mutate<T>(fn: (d: CredentialsData) => T): Promise<T> {
    const apply = () => {
      const data = this.read();
      const result = fn(data);
      writeFileAtomicSync(this.path, `${JSON.stringify(data, null, 2)}\n`, 0o600);
      return result;
    };
    return this.opts.locked ? apply() : withDirLock(this.configDir, apply);
  }

  async get(account: string): Promise<string | null> {
    return this.read().credentials[account] ?? null;
  }

  async set(account: string, secret: string): Promise<void> {
    await this.mutate((d) => {
      d.credentials[account] = secret;
    });
  }

  async delete(account: string): Promise<boolean> {
    if (!(account in this.read().credentials)) return false;
    return this.mutate((d) => {
      const had = account in d.credentials;
      delete d.credentials[account];
      return had;
    });
  }
}
