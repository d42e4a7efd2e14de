import { statSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { ApiError } from '../../client/errors.js';
import { KeychainCredentialStore } from '../../credentials/keychain-store.js';
import { KeychainUnavailableError, type StorageBackend } from '../../credentials/types.js';
import { type CliContext, EMBEDDED } from '../context.js';
import type { UserError } from '../errors.js';
import { EXPIRY_WARNING_MS } from '../expiry.js';
import type { CommandHost } from './host.js';

/** One line of `doctor --json` (CLI.md): `fix` says what to do when `ok` is false (or soon will be). */
export interface DoctorCheck {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

export interface DoctorReport {
  ok: boolean;
  storage: { backend: StorageBackend; reason: string };
  checks: DoctorCheck[];
}

/** More clock skew than this breaks expiry and approval times: a problem. */
export const MAX_SKEW_S = 60;
const PROXY_VARS = [
  'HTTPS_PROXY',
  'https_proxy',
  'HTTP_PROXY',
  'http_proxy',
  'NO_PROXY',
  'no_proxy',
  'ALL_PROXY',
  'all_proxy',
];

/** A proxy setting as it may be shown: user name and password replaced, an unparsable value not shown. */
export function redactProxy(name: string, value: string): string {
  if (/^no_proxy$/i.test(name)) return value.slice(0, 200);
  try {
    const url = new URL(value.includes('://') ? value : `http://${value}`);
    if (url.username || url.password) {
      url.username = '***';
      url.password = '';
    }
    return url.toString().replace(/\/$/, '');
  } catch {
    return '(set, but not a URL; not shown)';
  }
}

/**
 * Whether a login could store its key in the keychain (a test entry written, read back and deleted;
 * a read alone succeeds on backends that refuse every write), and how long it took.
 */
async function probeKeychain(ctx: CliContext): Promise<{ ok: boolean; ms: number; message?: string }> {
  const timeoutMs = Number(ctx.env.BREEZE_KEYCHAIN_TIMEOUT_MS) || 3000;
  const started = performance.now();
  try {
    await new KeychainCredentialStore({ timeoutMs }).probe(`doctor-probe@${process.pid}`);
    return { ok: true, ms: Math.round(performance.now() - started) };
  } catch (err) {
    const message = err instanceof KeychainUnavailableError ? err.message : (err as Error).message;
    return { ok: false, ms: Math.round(performance.now() - started), message };
  }
}

function modeCheck(name: string, path: string, wantMax: number, what: string): DoctorCheck | null {
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch {
    return null; // not there: nothing to check
  }
  const octal = mode.toString(8).padStart(3, '0');
  const want = wantMax.toString(8).padStart(3, '0');
  if ((mode & ~wantMax) === 0) return { name, ok: true, detail: `${path} is ${octal}` };
  return {
    name,
    ok: false,
    detail: `${path} is ${octal}: ${what} can be read or changed by other users`,
    fix: `chmod ${want} ${path}`,
  };
}

/**
 * `breeze doctor`: what breeze would use and whether it works, each with a fix. Never throws for a
 * finding (the report says); exit 1 comes from the action when a check failed.
 */
export async function runDoctor(_opts: object, ctx: CliContext): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const saved = ctx.config.profile(ctx.profile);

  // --- storage: which backend and why ---
  const probe = await probeKeychain(ctx);
  const forced = ctx.env.BREEZE_STORAGE;
  let storage: DoctorReport['storage'];
  const probeText = probe.ok
    ? `the OS keychain answered in ${probe.ms} ms`
    : `the OS keychain is not usable (${probe.message}; probe took ${probe.ms} ms)`;
  if (ctx.credentials.envKey()) {
    storage = {
      backend: saved?.storage ?? (probe.ok ? 'keychain' : 'file'),
      reason: `BREEZE_API_KEY is set and used instead of any stored key; ${probeText}`,
    };
  } else if (saved) {
    storage = {
      backend: saved.storage,
      reason: `profile "${ctx.profile}" keeps its key in ${saved.storage === 'keychain' ? 'the OS keychain' : 'credentials.json'} (chosen at login); ${probeText}`,
    };
  } else if (forced === 'keychain' || forced === 'file') {
    storage = { backend: forced, reason: `BREEZE_STORAGE=${forced}; ${probeText}` };
  } else {
    storage = {
      backend: probe.ok ? 'keychain' : 'file',
      reason: probe.ok
        ? `${probeText}, so a login stores its key there`
        : `${probeText}, so a login stores its key in ${ctx.configDir}/credentials.json (0600)`,
    };
  }
  const needsKeychain =
    !ctx.credentials.envKey() && (saved?.storage === 'keychain' || (!saved && forced === 'keychain'));
  checks.push({
    name: 'keychain',
    ok: probe.ok || !needsKeychain,
    detail: probe.ok
      ? `usable (answered in ${probe.ms} ms)`
      : `not usable: ${probe.message} (${probe.ms} ms)`,
    ...(probe.ok
      ? {}
      : {
          fix: needsKeychain
            ? 'Unlock the keychain (on Linux: a Secret Service such as gnome-keyring on the D-Bus session), or log in again with --storage file.'
            : 'Nothing to do unless you want the keychain: on Linux run a Secret Service (gnome-keyring) on the D-Bus session.',
        }),
  });

  // --- file modes ---
  for (const c of [
    modeCheck('config_dir', ctx.configDir, 0o700, 'the configuration directory'),
    modeCheck('config_file', join(ctx.configDir, 'config.json'), 0o600, 'config.json'),
    modeCheck(
      'credentials_file',
      join(ctx.configDir, 'credentials.json'),
      0o600,
      'credentials.json (it holds keys)',
    ),
    modeCheck('pending_logins', join(ctx.configDir, 'pending-logins'), 0o700, 'pending-logins/'),
  ]) {
    if (c) checks.push(c);
  }

  // --- link file ---
  if (ctx.link) {
    checks.push({
      name: 'link',
      ok: true,
      detail: `${ctx.link.path} applies here (profile ${ctx.profile} from ${ctx.source('profile')}, server from ${ctx.source('server')})`,
    });
  }

  // --- proxy settings ---
  const proxies = PROXY_VARS.filter((n) => ctx.env[n]).map((n) => `${n}=${redactProxy(n, ctx.env[n]!)}`);
  const badProxy = PROXY_VARS.filter((n) => !/no_proxy/i.test(n) && ctx.env[n]).find((n) => {
    try {
      new URL(ctx.env[n]!.includes('://') ? ctx.env[n]! : `http://${ctx.env[n]}`);
      return false;
    } catch {
      return true;
    }
  });
  checks.push({
    name: 'proxy',
    ok: !badProxy,
    detail: proxies.length
      ? `${proxies.join('; ')}${ctx.server() === EMBEDDED ? ' (not used for the embedded server)' : ''}`
      : 'no proxy variables set',
    ...(badProxy
      ? { fix: `Set ${badProxy} to a URL such as http://proxy.example.com:3128, or unset it.` }
      : {}),
  });

  // --- server: reachability, version, clock skew ---
  const server = ctx.server();
  const label = server === EMBEDDED ? `the embedded server (${ctx.configDir}/server)` : server;
  let reachable = false;
  try {
    const client = await ctx.client();
    const started = performance.now();
    const res = await client.request<{ status?: unknown }>('GET', '/healthz', { auth: false, retries: 0 });
    const ms = Math.round(performance.now() - started);
    reachable = true;
    let version = 'unknown';
    try {
      const doc = await client.request<{ info?: { version?: unknown } }>('GET', '/openapi.json', {
        auth: false,
        retries: 0,
      });
      const v = doc.body?.info?.version;
      if (typeof v === 'string' && /^[0-9A-Za-z.+-]{1,40}$/.test(v)) version = v;
    } catch {
      // an older or stripped-down server: version stays unknown
    }
    // the resident embedded server names its package version (docs/architecture.md)
    let pkg: string | undefined;
    try {
      const v = JSON.parse(String(res.headers['x-breeze-resident'] ?? 'null'))?.version;
      if (typeof v === 'string' && /^[0-9A-Za-z.+-]{1,40}$/.test(v)) pkg = v;
    } catch {
      // not the resident server
    }
    checks.push({
      name: 'server',
      ok: true,
      detail: `${label} answered in ${ms} ms, API version ${version}${pkg ? `, breeze ${pkg}` : ''}`,
    });
    const date = res.headers.date;
    const at = typeof date === 'string' ? Date.parse(date) : Number.NaN;
    if (Number.isFinite(at)) {
      // Date is truncated to the second (+500 ms on average); compare with the middle of the request
      const skew = Math.round((ctx.clock().getTime() - ms / 2 - (at + 500)) / 1000);
      const ok = Math.abs(skew) <= MAX_SKEW_S;
      checks.push({
        name: 'clock_skew',
        ok,
        detail: `this clock is ${Math.abs(skew)} s ${skew >= 0 ? 'ahead of' : 'behind'} the server's`,
        ...(ok ? {} : { fix: 'Synchronise the clock (e.g. enable NTP: timedatectl set-ntp true).' }),
      });
    } else {
      checks.push({ name: 'clock_skew', ok: true, detail: 'the server sent no Date header; not checked' });
    }
  } catch (err) {
    checks.push({
      name: 'server',
      ok: false,
      // a NetworkError already says "Cannot reach <url>: why"; an HTTP error does not
      detail: /^Cannot reach /.test((err as Error).message)
        ? (err as Error).message
        : `cannot reach ${label}: ${(err as Error).message}`,
      fix:
        server === EMBEDDED
          ? `See ${ctx.configDir}/server/resident.log, or run "breeze server stop" and try again.`
          : `Check the URL (--server / BREEZE_SERVER / .breeze.json), that the server runs, and the proxy settings.`,
    });
  }

  // --- the key ---
  let session: Awaited<ReturnType<CliContext['session']>> | undefined;
  try {
    session = await ctx.session();
  } catch (err) {
    checks.push({
      name: 'key',
      ok: false,
      detail: (err as Error).message,
      fix: (err as UserError).hint ?? 'Run "breeze login".',
    });
  }
  if (session && reachable) {
    try {
      const client = await ctx.client({ apiKey: session.apiKey });
      const me = await client.me();
      const key = me.auth.key_id ? await client.getKey(me.auth.key_id) : undefined;
      const left = key?.expires_at
        ? Date.parse(key.expires_at) - ctx.clock().getTime()
        : Number.POSITIVE_INFINITY;
      const soon = left <= EXPIRY_WARNING_MS;
      checks.push({
        name: 'key',
        ok: true,
        detail: `${key?.prefix ?? 'the key'}… of ${me.user.email} (${session.source}) is accepted; ${
          key?.expires_at ? `expires ${key.expires_at}${soon ? ' (within 7 days)' : ''}` : 'does not expire'
        }`,
        ...(soon ? { fix: 'Rotate it before then: breeze keys rotate --self' } : {}),
      });
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        checks.push({
          name: 'key',
          ok: false,
          detail: `the server refuses the key in use (${session.source}): deleted, disabled or expired`,
          fix:
            session.source === 'env'
              ? 'Set BREEZE_API_KEY to a live key, or unset it.'
              : 'Run "breeze login".',
        });
      } else {
        checks.push({
          name: 'key',
          ok: false,
          detail: `could not check the key: ${(err as Error).message}`,
          fix: 'Run "breeze doctor" again; if it persists, see "breeze status --verbose".',
        });
      }
    }
  } else if (session) {
    checks.push({
      name: 'key',
      ok: false,
      detail: 'not checked: the server cannot be reached',
      fix: 'Fix the server check first.',
    });
  }

  return { ok: checks.every((c) => c.ok), storage, checks };
}

export function createCommand(host: CommandHost): Command {
  return new Command('doctor')
    .description('check the setup: storage backend, file modes, server, clock, key, proxy; suggests fixes')
    .addHelpText(
      'after',
      '\nExit code 1 when a check fails.\n\nExamples:\n  $ breeze doctor\n  $ breeze doctor --json',
    )
    .action(async (_o, cmd: Command) => {
      const ctx = await host.context(cmd);
      const r = await runDoctor({}, ctx);
      if (ctx.json) ctx.out.json(r);
      else {
        const lines = [`Storage:  ${r.storage.backend} (${r.storage.reason})`];
        for (const c of r.checks) {
          lines.push(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.name}: ${c.detail}`);
          if (c.fix) lines.push(`      fix: ${c.fix}`);
        }
        ctx.out.data(lines);
        ctx.out.info(r.ok ? 'No problems found.' : 'Problems found (see FAIL above).');
      }
      if (!r.ok) ctx.exitCode = 1;
    });
}
