import type { Scope } from '../../core/types.js';

/**
 * Parsed `breeze login` flags, handed to every login flow (src/cli/login/browser.ts `runBrowserLogin`,
 * src/cli/login/email.ts `runEmailLogin`). Flows return a `LoginResult`; saving is done here.
 */
export interface LoginOptions {
  /** false with `--no-browser` (device mode: print the URL and user code, poll) */
  browser: boolean;
  /** `--email [addr]`: true when given without an address (ask for it) */
  email?: string | true;
  /** `--code <code>`: the mailed code, for non-interactive email login */
  code?: string;
  /** `--with-key`: read a key from stdin */
  withKey?: boolean;
  /** `--name <key name>` for the key the server mints */
  name?: string;
  /** `--scopes read,write,admin` (normalised; undefined = server default) */
  scopes?: Scope[];
  /** `--storage keychain|file` (undefined = BREEZE_STORAGE, else auto) */
  storage?: 'keychain' | 'file';
}
