import { type CredentialStore, KeychainUnavailableError } from './types.js';

export const KEYCHAIN_SERVICE = 'breeze';
export const DEFAULT_KEYCHAIN_TIMEOUT_MS = 3000;

type Op = 'get' | 'set' | 'delete' | 'probe';
interface Reply {
  ok: boolean;
  value?: string | null;
  deleted?: boolean;
  message?: string;
}

// Runs in a child process: reads one request on stdin, answers one JSON line on stdout.
const CHILD_SOURCE = `
const { Entry } = require(process.argv[1]);
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const req = JSON.parse(input);
  const reply = (r) => process.stdout.write(JSON.stringify(r) + '\\n');
  try {
    const e = new Entry(req.service, req.account);
    if (req.op === 'get') reply({ ok: true, value: e.getPassword() ?? null });
    else if (req.op === 'set') { e.setPassword(req.secret); reply({ ok: true, value: e.getPassword() ?? null }); }
    else if (req.op === 'probe') {
      // a read alone proves nothing: some backends answer "no such entry" and refuse every write
      e.setPassword(req.secret);
      const back = e.getPassword();
      try { e.deleteCredential(); } catch {}
      if (back !== req.secret) throw new Error('the keychain did not keep a test entry');
      reply({ ok: true });
    }
    else { const had = e.getPassword() != null; if (had) e.deleteCredential(); reply({ ok: true, deleted: had }); }
  } catch (err) {
    reply({ ok: false, message: String((err && err.message) || err).split('\\n')[0] });
  }
});
`;

/**
 * The OS keychain through @napi-rs/keyring (Secret Service on Linux, Keychain on macOS, Credential
 * Manager on Windows), service `breeze`, account `<profile>@<server>`.
 *
 * Every call runs in a short-lived child process killed after `timeoutMs`. The napi calls are
 * synchronous and can block forever (a D-Bus peer that accepts and never answers, a keyring waiting
 * for an unlock prompt nobody sees): in our own thread that would freeze the event loop, and in a
 * worker thread it would still block `process.exit` (which joins workers). A child can always be
 * killed. The secret travels over a pipe, never on a command line.
 */
export class KeychainCredentialStore implements CredentialStore {
  readonly backend = 'keychain' as const;

  constructor(private readonly opts: { service?: string; timeoutMs?: number } = {}) {}

  private call(op: Op, account: string, secret?: string): Promise<Reply> {
    const timeoutMs = this.opts.timeoutMs ?? DEFAULT_KEYCHAIN_TIMEOUT_MS;
    let modulePath: string;
    try {
      // node:module and node:child_process only when the keychain is used (`token` with a file store never is)
      const { createRequire } = process.getBuiltinModule('node:module');
      modulePath = createRequire(import.meta.url).resolve('@napi-rs/keyring');
    } catch (err) {
      return Promise.reject(
        new KeychainUnavailableError(`The OS keychain module is missing: ${(err as Error).message}`),
      );
    }
    const { spawn } = process.getBuiltinModule('node:child_process');
    const child = spawn(process.execPath, ['-e', CHILD_SOURCE, modulePath], {
      stdio: ['pipe', 'pipe', 'ignore'],
      windowsHide: true,
    });
    return new Promise<Reply>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        child.unref();
        reject(new KeychainUnavailableError(`The OS keychain did not answer within ${timeoutMs} ms.`));
      }, timeoutMs);
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d;
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new KeychainUnavailableError(`The OS keychain cannot be used: ${err.message}`));
      });
      child.once('close', () => {
        clearTimeout(timer);
        try {
          const reply = JSON.parse(out) as Reply;
          if (!reply.ok)
            reject(new KeychainUnavailableError(`The OS keychain cannot be used: ${reply.message}`));
          else resolve(reply);
        } catch {
          reject(new KeychainUnavailableError('The OS keychain helper failed.'));
        }
      });
      child.stdin!.on('error', () => {});
      child.stdin!.end(
        JSON.stringify({ op, service: this.opts.service ?? KEYCHAIN_SERVICE, account, secret }),
      );
    });
  }

  async get(account: string): Promise<string | null> {
    return (await this.call('get', account)).value ?? null;
  }

  async set(account: string, secret: string): Promise<void> {
    const reply = await this.call('set', account, secret);
    // Some backends accept a write they cannot read back (no default collection): make sure it stuck.
    if (reply.value !== secret) throw new KeychainUnavailableError('The OS keychain did not keep the key.');
  }

  /**
   * Whether a key could be stored: writes a random secret under `account`, reads it back and
   * deletes it, in one child process. Throws `KeychainUnavailableError` when any step fails.
   */
  async probe(account: string): Promise<void> {
    const { randomBytes } = process.getBuiltinModule('node:crypto');
    await this.call('probe', account, randomBytes(16).toString('hex'));
  }

  async delete(account: string): Promise<boolean> {
    return (await this.call('delete', account)).deleted ?? false;
  }
}
