import { join, resolve } from 'node:path';
import type { BreezeClient, SocketTarget } from '../client/client.js';
import { isWellFormedApiKey } from '../core/api-key.js';
import type { ResolvedCredential } from '../credentials/manager.js';
import { CredentialManager } from '../credentials/manager.js';
import { accountName, type StorageBackend } from '../credentials/types.js';
import { ConfigFile, type ProfileConfig } from './config.js';
import { InterruptedError, NotAuthenticatedError, UsageError } from './errors.js';
import { findLinkFile, type LinkFile } from './link-file.js';
import { createOutput, MAX_MESSAGE_LENGTH, type Output } from './ui/output.js';
import { createPrompts, isInteractive, type Prompts } from './ui/prompts.js';
import type { Spinner } from './ui/spinner.js';
import { cliVersion } from './version.js';

/** Global options as commander parsed them (before or after the command name). */
export interface GlobalOptions {
  server?: string;
  profile?: string;
  json?: boolean;
  configDir?: string;
  color?: boolean;
  verbose?: boolean;
}

/** The server id `embedded` (the packaged server over `<config dir>/server/`, resident in the background). */
export const EMBEDDED = 'embedded';

/** The longest `Retry-After` a command waits out by itself (with a notice on stderr). */
const RATE_LIMIT_MAX_WAIT_S = 10;

/** Where a setting came from (CLI.md precedence: flag > environment > .breeze.json > profile > default). */
export type ValueSource = 'flag' | 'env' | 'link' | 'profile' | 'default';

/** The credential in use, with the profile it belongs to. */
export interface Session extends ResolvedCredential {
  profile: string;
  /** server URL or `embedded` */
  server: string;
  /** the profile's saved entry, when there is one for this server */
  saved: ProfileConfig | undefined;
  /** where a stored key of this profile lives (undefined when none is saved) */
  storage: StorageBackend | undefined;
}

/**
 * Everything a command touches outside itself. Built once per run by program.ts; tests build one
 * with `createContext({ configDir: tmp, server: url }, { env })`.
 */
export interface CliContext {
  readonly env: NodeJS.ProcessEnv;
  readonly configDir: string;
  /** `--profile` / `BREEZE_PROFILE` / `.breeze.json` / `default` */
  readonly profile: string;
  /** the nearest `.breeze.json` up from the working directory (`breeze link`), if any */
  readonly link: LinkFile | undefined;
  /** where the profile, server and project in use came from */
  source(setting: 'profile' | 'server' | 'project'): ValueSource;
  /** the project pinned by `BREEZE_PROJECT` or `.breeze.json` (a `--project` flag wins over it) */
  project(): string | undefined;
  readonly json: boolean;
  readonly verbose: boolean;
  readonly out: Output;
  /** prompts; non-interactive runs get exit-2 errors naming the flag */
  readonly prompts: Prompts;
  /** aborted on Ctrl-C (SIGINT) or SIGTERM: pass it to every wait */
  readonly signal: AbortSignal;
  readonly config: ConfigFile;
  readonly credentials: CredentialManager;
  /** the exit code when the command returns normally (e.g. `run` passes on its child's) */
  exitCode: number;
  clock(): Date;
  /** opens a URL in the user's browser; false when that was not possible (the caller prints it) */
  openUrl(url: string): Promise<boolean>;
  /** a spinner on stderr (a no-op when stderr is not a TTY) */
  spinner(text: string): Promise<Spinner>;
  /** `--server` / `BREEZE_SERVER` / `.breeze.json` / the profile's saved server / `embedded` */
  server(): string;
  /** the base URL of `server()`, starting the embedded server when that is the target */
  baseUrl(): Promise<string>;
  /**
   * An API client for `server()` (the embedded server is started on first use). `apiKey`: the
   * credential to send; omitted = anonymous (login flows). `server`: another server than `server()`
   * (a re-login's replaced key, on the server it belongs to). `timeoutMs`, `retries`: for a
   * best-effort call that must not hold the command up (default 30 s and 2 retries).
   */
  client(opts?: {
    apiKey?: string;
    server?: string;
    timeoutMs?: number;
    retries?: number;
  }): Promise<BreezeClient>;
  /** the credential in use (BREEZE_API_KEY, else the profile's stored key); throws exit 3 when none */
  session(): Promise<Session>;
  /** `session()` plus a client sending its key */
  authenticated(): Promise<{ session: Session; client: BreezeClient }>;
  /** the keychain / config account for the current profile and server */
  account(server?: string): string;
  /**
   * Takes over SIGINT/SIGTERM (e.g. `run` forwards them to its child, `serve` shuts down); null
   * restores the default (abort + exit 130).
   */
  onSignal(handler: ((signal: NodeJS.Signals) => void) | null): void;
  /**
   * On the embedded server: waits (at most `timeoutMs`) until a dev mail to `to` has been shown on
   * stderr (the server writes mails in the background). A no-op for a URL server.
   */
  embeddedMail(to: string, timeoutMs?: number): Promise<void>;
  /** work to do before the process exits (also after Ctrl-C) */
  onCleanup(fn: () => Promise<void> | void): void;
  /** runs the cleanups (program.ts calls it) */
  close(): Promise<void>;
}

/** SIGINT/SIGTERM handling for one CLI run: abort by default, or a command's own handler. */
export class Interrupts {
  // made on first use: loading AbortController costs `breeze token` a millisecond it never needs
  private controller?: AbortController;
  private handler: ((signal: NodeJS.Signals) => void) | null = null;
  private rejectInterrupted?: (err: Error) => void;
  private readonly interrupted = new Promise<never>((_, reject) => {
    this.rejectInterrupted = reject;
  });
  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }
  private readonly listener = (sig: NodeJS.Signals) => {
    if (this.handler) return this.handler(sig);
    if (this.signal.aborted) return;
    const err = new InterruptedError();
    if (sig === 'SIGTERM') (err as { exitCode: number }).exitCode = 143;
    this.controller?.abort(err);
    this.rejectInterrupted?.(err);
  };

  constructor() {
    this.interrupted.catch(() => {});
  }
  install(): void {
    process.on('SIGINT', this.listener);
    process.on('SIGTERM', this.listener);
  }
  uninstall(): void {
    process.off('SIGINT', this.listener);
    process.off('SIGTERM', this.listener);
  }
  setHandler(handler: ((signal: NodeJS.Signals) => void) | null): void {
    this.handler = handler;
  }
  /** rejects with InterruptedError on the first unhandled signal */
  whenInterrupted(): Promise<never> {
    return this.interrupted;
  }
}

export interface ContextDeps {
  env?: NodeJS.ProcessEnv;
  interrupts?: Interrupts;
  output?: Output;
  prompts?: Prompts;
  clock?: () => Date;
  openUrl?: (url: string) => Promise<boolean>;
  /** where `.breeze.json` is looked for (default: process.cwd()) */
  cwd?: string;
}

/** Normalises a server given by flag, env or profile: `embedded`, or an http(s) URL without trailing slash. */
export function normaliseServer(value: string): string {
  const v = value.trim();
  if (v === EMBEDDED) return EMBEDDED;
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new UsageError(`Invalid server "${value}".`, {
      hint: 'Pass an http(s) URL or "embedded" to --server.',
    });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`Invalid server "${value}": only http and https are supported.`);
  }
  // the server URL is stored in config.json and shown in messages: it must never carry a secret
  if (url.username || url.password) {
    throw new UsageError('Invalid server URL: it must not contain a user name or password.', {
      hint: 'Breeze authenticates with API keys; pass the URL without "user:password@".',
    });
  }
  return url.toString().replace(/\/+$/, '');
}

/** Builds the CliContext from the global options; nothing heavy is loaded until used. */
export async function createContext(globals: GlobalOptions, deps: ContextDeps = {}): Promise<CliContext> {
  const env = deps.env ?? process.env;
  // `--config-dir "$UNSET"` would otherwise mean the working directory: keys written into a checkout
  if (globals.configDir !== undefined && globals.configDir.trim() === '') {
    throw new UsageError('--config-dir is empty.', {
      hint: 'Pass a directory, or leave the flag out (BREEZE_CONFIG_DIR, else ~/.breeze).',
    });
  }
  if (globals.server !== undefined && globals.server.trim() === '') {
    throw new UsageError('--server is empty.', {
      hint: 'Pass an http(s) URL or "embedded", or leave the flag out.',
    });
  }
  const interrupts = deps.interrupts ?? new Interrupts();
  const configDir = resolve(
    globals.configDir ??
      (env.BREEZE_CONFIG_DIR || join(process.getBuiltinModule('node:os').homedir(), '.breeze')),
  );
  const out = deps.output ?? createOutput();
  const link = findLinkFile(deps.cwd ?? process.cwd(), (m) => out.warn(m));
  const profileSource: ValueSource =
    globals.profile !== undefined ? 'flag' : env.BREEZE_PROFILE ? 'env' : link?.profile ? 'link' : 'default';
  const profile = globals.profile ?? (env.BREEZE_PROFILE || link?.profile || 'default');
  // names like "constructor" or "__proto__" would collide with Object.prototype in config.json's map
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(profile) || profile in Object.prototype) {
    throw new UsageError(`Invalid profile name "${profile}".`, {
      hint: 'Use letters, digits, ".", "_" or "-".',
    });
  }
  const verbose = Boolean(globals.verbose) || env.BREEZE_DEBUG === '1';
  const config = new ConfigFile(configDir);
  const credentials = new CredentialManager({ configDir, env, warn: (m) => out.warn(m) });
  const cleanups: Array<() => Promise<void> | void> = [];
  const serverFlag = globals.server ?? (env.BREEZE_SERVER || undefined);
  const envProject = env.BREEZE_PROJECT?.trim() || undefined;
  let embedded: Promise<{ url: string; socket: string }> | undefined;
  // built on first use: reading process.stdin.isTTY costs `token` and `env` milliseconds
  let prompts = deps.prompts;
  /**
   * `--verbose`: what the client and the resident server's start-up trace, through `out`; a long
   * line (a response body) in pieces out.info prints whole, so the trace keeps all of it
   */
  const trace = verbose
    ? (line: string) => {
        for (let at = 0; at === 0 || at < line.length; at += MAX_MESSAGE_LENGTH)
          out.info(line.slice(at, at + MAX_MESSAGE_LENGTH));
      }
    : undefined;

  /**
   * The resident embedded server (started in the background when none runs; docs/architecture.md),
   * with the mails it writes shown on stderr while this command runs. Undefined for a URL server.
   */
  const embeddedServer = (server = ctx.server()): Promise<{ url: string; socket: string }> | undefined => {
    if (server !== EMBEDDED) return undefined;
    embedded ??= (async () => {
      const [{ ensureResident }, { watchOutbox }] = await Promise.all([
        import('./resident.js'),
        import('./outbox-watch.js'),
      ]);
      // before any request: a mail caused by this command is written after the watch starts
      const watch = watchOutbox(join(configDir, 'server', 'outbox'), (m) =>
        out.info(`[embedded server] mail to ${m.to}: ${m.subject}`),
      );
      cleanups.push(() => watch.close());
      mailWatch = watch;
      const record = await ensureResident(configDir, { version: cliVersion(), env, trace });
      return { url: record.url, socket: record.socket };
    })();
    return embedded;
  };
  let mailWatch: { waitFor(to: string, timeoutMs: number): Promise<void> } | undefined;
  /**
   * The resident server as clients reach it, one for the command: when it left between our check
   * and a request (its idle time ran out, or it was stopped), `reconnect` finds or starts the one
   * running now, for that request and every later one.
   */
  let target: SocketTarget | undefined;
  const residentTarget = (found: { url: string; socket: string }): SocketTarget => {
    if (target) return target;
    // requests failing together look once
    let looking: Promise<void> | undefined;
    const t: SocketTarget = {
      path: found.socket,
      url: found.url,
      reconnect() {
        looking ??= (async () => {
          const { ensureResident } = await import('./resident.js');
          const record = await ensureResident(configDir, {
            version: cliVersion(),
            env,
            trace,
            recheck: true,
          });
          t.path = record.socket;
          t.url = record.url;
          embedded = Promise.resolve({ url: record.url, socket: record.socket });
        })().finally(() => {
          looking = undefined;
        });
        return looking;
      },
    };
    target = t;
    return t;
  };

  const ctx: CliContext = {
    env,
    configDir,
    profile,
    link,
    source(setting) {
      if (setting === 'profile') return profileSource;
      if (setting === 'project') return envProject ? 'env' : link?.project ? 'link' : 'default';
      if (globals.server !== undefined) return 'flag';
      if (env.BREEZE_SERVER) return 'env';
      if (link?.server) return 'link';
      return config.profile(profile)?.server ? 'profile' : 'default';
    },
    project() {
      return envProject ?? link?.project;
    },
    json: Boolean(globals.json),
    verbose,
    out,
    get prompts() {
      prompts ??= createPrompts(isInteractive(env), interrupts.signal);
      return prompts;
    },
    get signal() {
      return interrupts.signal;
    },
    config,
    credentials,
    exitCode: 0,
    clock: deps.clock ?? (() => new Date()),
    async openUrl(url) {
      if (deps.openUrl) return deps.openUrl(url);
      try {
        const { default: open } = await import('open');
        const child = await open(url);
        child.on('error', () => {});
        return true;
      } catch {
        return false;
      }
    },
    async spinner(text) {
      const { createSpinner } = await import('./ui/spinner.js');
      return createSpinner(text, out);
    },
    server() {
      if (serverFlag) return normaliseServer(serverFlag);
      if (link?.server) {
        try {
          return normaliseServer(link.server);
        } catch (err) {
          throw new UsageError(`${link.path}: ${(err as Error).message}`, {
            hint: `Fix "server" there, or run "breeze unlink" in that directory.`,
          });
        }
      }
      const saved = config.profile(profile)?.server;
      return saved ? normaliseServer(saved) : EMBEDDED;
    },
    async baseUrl() {
      return (await embeddedServer())?.url ?? ctx.server();
    },
    async client(opts = {}) {
      const server = opts.server ?? ctx.server();
      const [{ BreezeClient }, resident] = await Promise.all([
        import('../client/client.js'),
        embeddedServer(server),
      ]);
      return new BreezeClient({
        baseUrl: resident?.url ?? server,
        // the resident embedded server: over its unix socket (links and pages use its loopback URL)
        socket: resident ? residentTarget(resident) : undefined,
        apiKey: opts.apiKey,
        ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
        ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
        userAgent: `breeze/${cliVersion()}`,
        signal: interrupts.signal,
        // the embedded server is on loopback: never send it through a proxy
        proxy: server !== EMBEDDED,
        // through `out`: escaped like any other line for people, and printed above a running spinner
        trace,
        // a short Retry-After is waited out, saying so; a long one fails at once (exit 1, RATE_LIMITED,
        // "try again in Ns") instead of leaving a script or CI job hanging silently for a minute
        maxRetryAfterS: RATE_LIMIT_MAX_WAIT_S,
        onRateLimited: ({ waitS }) => out.warn(`Rate limited by the server (429): retrying in ${waitS} s.`),
      });
    },
    account(server = ctx.server()) {
      return accountName(profile, server);
    },
    async session() {
      const fromEnv = credentials.envKey();
      if (fromEnv !== undefined && !isWellFormedApiKey(fromEnv)) {
        // not sent anywhere, not echoed (not even a prefix): it may be some other secret
        throw new NotAuthenticatedError('BREEZE_API_KEY is not a Breeze key (malformed).', {
          hint: 'A Breeze key is "brz_" and 46 letters and digits. Set BREEZE_API_KEY to one (see "breeze keys create"), or unset it to use the key stored by "breeze login".',
        });
      }
      const server = ctx.server();
      const savedProfile = config.profile(profile);
      if (
        fromEnv !== undefined &&
        link?.server &&
        ctx.source('server') === 'link' &&
        (!savedProfile || normaliseServer(savedProfile.server) !== server)
      ) {
        // a checked-out repository must not be able to send a CI key to a server of its choosing
        throw new UsageError(
          `BREEZE_API_KEY is not sent to ${server}: that server comes from ${link.path}, not from you.`,
          { hint: 'Set BREEZE_SERVER (or pass --server) to the server the key belongs to.' },
        );
      }
      const saved =
        savedProfile && normaliseServer(savedProfile.server) === server ? savedProfile : undefined;
      const resolved = await credentials.resolve(ctx.account(server), saved?.storage);
      if (!resolved) {
        const where = server === EMBEDDED ? 'the embedded server' : server;
        throw new NotAuthenticatedError(
          savedProfile && !saved
            ? `Profile "${profile}" is logged in to ${savedProfile.server}, not ${where}.`
            : saved
              ? saved.storage === 'file'
                ? `The key of profile "${profile}" is missing from the credentials file.`
                : `The key of profile "${profile}" was not found in the OS keychain (is the keychain locked?).`
              : `Not logged in (profile "${profile}", ${where}).`,
          {
            hint: `Run "breeze login${profile !== 'default' ? ` --profile ${profile}` : ''}" or set BREEZE_API_KEY.`,
          },
        );
      }
      return { ...resolved, profile, server, saved, storage: saved?.storage };
    },
    async authenticated() {
      const session = await ctx.session();
      const client = await ctx.client({ apiKey: session.apiKey });
      return { session, client };
    },
    onSignal(handler) {
      interrupts.setHandler(handler);
    },
    async embeddedMail(to, timeoutMs = 5000) {
      await mailWatch?.waitFor(to, timeoutMs);
    },
    onCleanup(fn) {
      cleanups.push(fn);
    },
    async close() {
      for (const fn of cleanups.splice(0).reverse()) {
        try {
          await fn();
        } catch {
          // best effort: the process is leaving
        }
      }
    },
  };
  return ctx;
}
