import { join } from 'node:path';
import {
  hasRecordField,
  readJsonFile,
  withDirLock,
  writeFileAtomicSync,
} from '../credentials/atomic-file.js';
import type { StorageBackend } from '../credentials/types.js';

export const CONFIG_FILE = 'config.json';

/** One profile of config.json. Never a secret: the key itself lives in the keychain or credentials.json. */
export interface ProfileConfig {
  /** server URL, or `embedded` */
  server: string;
  key_id: string;
  /** first 12 characters of the key, for display */
  prefix: string;
  /** email of the key's user */
  email: string;
  user_id?: string;
  storage: StorageBackend;
  /** the current organization (`breeze orgs switch`); commands on members and projects act on it */
  org_id?: string;
  /** the key's expiry as the server said at login / rotation / status (RFC 3339; null: never) */
  expires_at?: string | null;
  /**
   * true: a login made this key for this profile and nobody saw it, so logging in again deletes it;
   * false: pasted (`--with-key`) or made by `keys create`/`rotate` (printed), so kept. Absent in
   * profiles saved before it was recorded: the key's `created_via` decides.
   */
  minted?: boolean;
}

export interface ConfigData {
  version: 1;
  profiles: Record<string, ProfileConfig>;
}

/**
 * `<config dir>/config.json`. Reads need no lock (the file is only ever replaced by rename);
 * `update` takes the directory lock so concurrent processes never lose each other's profiles.
 */
export class ConfigFile {
  readonly path: string;
  constructor(readonly dir: string) {
    this.path = join(dir, CONFIG_FILE);
  }

  read(): ConfigData {
    return readJsonFile<ConfigData>(this.path, hasRecordField('profiles')) ?? { version: 1, profiles: {} };
  }

  profile(name: string): ProfileConfig | undefined {
    return this.read().profiles[name];
  }

  /**
   * Read-modify-write under the directory lock. `fn` may mutate the data (and do other work that must
   * happen under the same lock, e.g. storing the key in credentials.json with `locked: true`).
   */
  async update<T>(fn: (data: ConfigData) => T | Promise<T>, opts: { locked?: boolean } = {}): Promise<T> {
    const apply = async () => {
      const data = this.read();
      const result = await fn(data);
      writeFileAtomicSync(this.path, `${JSON.stringify(data, null, 2)}\n`, 0o600);
      return result;
    };
    return opts.locked ? apply() : withDirLock(this.dir, apply);
  }

  /** Runs `fn` holding the directory lock (for work spanning config.json and credentials.json). */
  locked<T>(fn: () => Promise<T> | T): Promise<T> {
    return withDirLock(this.dir, fn);
  }
}
