import { Command, InvalidArgumentError, Option } from 'commander';
import type { JwtAlg } from '../../server/config.js';
import type { CliContext } from '../context.js';
import { UsageError } from '../errors.js';
import type { CommandHost } from './host.js';

export interface ServeCommandOptions {
  host: string;
  port: number;
  dataDir?: string;
  databaseUrl?: string;
  smtpUrl?: string;
  publicUrl?: string;
  signup: 'open' | 'closed';
  rateLimitPerKey: number;
  jwtAlg: JwtAlg;
  /** accept http:// OIDC issuers on loopback (tests, development) */
  allowHttpIssuers?: boolean;
  auditRetentionDays: number;
  /** webhooks may target http and private/loopback addresses (also BREEZE_ALLOW_PRIVATE_WEBHOOKS=1) */
  allowPrivateWebhooks?: boolean;
  /** `--trust-proxy` / BREEZE_TRUST_PROXY, unparsed: checked in runServe */
  trustProxy?: string;
}

/** Days an audit event is kept: `--audit-retention-days`, else `BREEZE_AUDIT_RETENTION_DAYS`, else 365. */
export const AUDIT_RETENTION_MAX_DAYS = 36500;

function intArg(name: string, min: number, max: number) {
  return (v: string) => {
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}.`);
    }
    return Number(v);
  };
}

/**
 * Runs the server in the foreground until SIGINT/SIGTERM, then closes it cleanly (exit 0). Resolves
 * with the URL it served once it has stopped; `onListening` fires as soon as it listens.
 */
export async function runServe(
  opts: ServeCommandOptions,
  ctx: CliContext,
  hooks: { onListening?: (url: string) => void; stop?: Promise<unknown> } = {},
): Promise<{ url: string }> {
  const [{ startServer }, { loggerOptions }, { embeddedDataDir }] = await Promise.all([
    import('../../server/serve.js'),
    import('../../server/logging.js'),
    import('../../server/embedded.js'),
  ]);
  const { ensurePrivateDir } = await import('../../credentials/atomic-file.js');
  if (opts.dataDir !== undefined && opts.dataDir.trim() === '') {
    throw new UsageError('--data-dir is empty.', {
      hint: 'Pass a directory, or leave the flag out for <config dir>/server.',
    });
  }
  const dataDir = opts.dataDir ?? embeddedDataDir(ctx.configDir);
  if (!opts.databaseUrl) ensurePrivateDir(dataDir);
  if (opts.publicUrl && !parseUrl(opts.publicUrl, ['http:', 'https:'])) {
    throw new UsageError(`Invalid --public-url "${opts.publicUrl}".`, {
      hint: 'Pass the http(s) URL browsers reach the server at, e.g. https://breeze.example.com.',
    });
  }
  // bad URLs are usage errors (exit 2) before anything starts; never echoed: they may hold a password
  // the scheme only: pg takes URLs that are no WHATWG URL (a unix socket, postgres://user@/db?host=
  // /run/postgresql, as docs/self-hosting.md shows; a password with an unencoded '/' or '@')
  if (opts.databaseUrl !== undefined && !/^postgres(ql)?:\/\/./i.test(opts.databaseUrl)) {
    throw new UsageError('Invalid --database-url: expected a PostgreSQL URL.', {
      hint: 'e.g. --database-url postgres://user:password@host:5432/breeze',
    });
  }
  if (opts.smtpUrl !== undefined && !parseUrl(opts.smtpUrl, ['smtp:', 'smtps:'])?.hostname) {
    throw new UsageError('Invalid --smtp-url: expected smtp://[user:pass@]host[:port] or smtps://...', {
      hint: 'e.g. --smtp-url smtp://mail.example.com:587',
    });
  }
  let trustProxy: string[] | undefined;
  // empty (`BREEZE_TRUST_PROXY=` from a template): no proxy trusted, as when unset
  if (opts.trustProxy !== undefined && opts.trustProxy.trim() !== '') {
    const { parseTrustedProxies } = await import('../../server/client-ip.js');
    try {
      trustProxy = parseTrustedProxies(opts.trustProxy);
    } catch (err) {
      throw new UsageError(`Invalid --trust-proxy: ${(err as Error).message}.`, {
        hint: 'Pass the addresses your load balancer connects from, e.g. --trust-proxy 10.0.0.0/8,loopback',
      });
    }
  }
  let stopRequested!: () => void;
  const stopped = new Promise<void>((resolve) => {
    stopRequested = resolve;
  });
  // Take over SIGINT/SIGTERM before listening: a signal during start-up still stops cleanly.
  ctx.onSignal(() => stopRequested());
  const server = await startServer({
    host: opts.host,
    port: opts.port,
    dataDir,
    databaseUrl: opts.databaseUrl,
    smtpUrl: opts.smtpUrl,
    publicUrl: opts.publicUrl,
    signup: opts.signup,
    rateLimitPerKey: opts.rateLimitPerKey,
    jwtAlg: opts.jwtAlg,
    auditRetentionDays: opts.auditRetentionDays,
    logger: loggerOptions(),
    ...(opts.allowHttpIssuers ? { config: { allowHttpIssuers: true } } : {}),
    allowPrivateWebhooks: opts.allowPrivateWebhooks === true || isOn(ctx.env.BREEZE_ALLOW_PRIVATE_WEBHOOKS),
    trustProxy,
  });
  if (trustProxy) {
    server.app.log.info(
      { trust_proxy: trustProxy },
      'trusting X-Forwarded-For from these proxies: a client is the right-most address not among them',
    );
  }
  process.stderr.write(`Breeze server listening on ${server.url}\n`);
  server.app.log.info(
    { url: server.url, data_dir: opts.databaseUrl ? undefined : dataDir },
    `listening on ${server.url}`,
  );
  hooks.onListening?.(server.url);
  await (hooks.stop ? Promise.race([stopped, hooks.stop]) : stopped);
  server.app.log.info('shutting down');
  await server.close();
  ctx.onSignal(null);
  process.stderr.write('Breeze server stopped.\n');
  return { url: server.url };
}

/** `value` as a URL when it is one with one of `protocols`, else undefined. */
function parseUrl(value: string, protocols: readonly string[]): URL | undefined {
  try {
    const url = new URL(value);
    return protocols.includes(url.protocol) ? url : undefined;
  } catch {
    return undefined;
  }
}

/** An on/off environment variable: `1`, `true`, `yes`, `on` turn it on. */
function isOn(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes|on)$/i.test(value.trim());
}

export function createCommand(host: CommandHost): Command {
  return new Command('serve')
    .description('run the Breeze server in the foreground (JSON log lines on stdout)')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--port <port>', 'TCP port (0 picks a free one)', intArg('--port', 0, 65535), 4455)
    .option('--data-dir <dir>', 'SQLite data directory (default <config dir>/server)')
    .option('--database-url <url>', 'PostgreSQL URL instead of SQLite')
    .option(
      '--smtp-url <url>',
      'send mail through this SMTP server (default: .eml files in <data dir>/outbox)',
    )
    .option('--public-url <url>', 'URL browsers reach the server at (links, mails, JWT issuer)')
    .addOption(
      new Option('--signup <policy>', 'whether unknown emails get an account')
        .choices(['open', 'closed'])
        .default('open'),
    )
    .option(
      '--rate-limit-per-key <n>',
      'requests per minute per key; 0 turns it off',
      intArg('--rate-limit-per-key', 0, 1e9),
      600,
    )
    .addOption(
      new Option('--audit-retention-days <n>', 'days audit events are kept (0 keeps them forever)')
        .env('BREEZE_AUDIT_RETENTION_DAYS')
        .argParser(intArg('--audit-retention-days', 0, AUDIT_RETENTION_MAX_DAYS))
        .default(365),
    )
    .addOption(
      new Option(
        '--jwt-alg <alg>',
        'algorithm name in JWTs and the JWKS: Ed25519 (RFC 9864) or EdDSA (RFC 8037, for verifiers such as PyJWT)',
      )
        .choices(['Ed25519', 'EdDSA'])
        .default('Ed25519'),
    )
    .addOption(
      new Option(
        '--trust-proxy <addresses>',
        'reverse proxies whose X-Forwarded-For names the client: addresses, CIDR ranges, loopback, linklocal, uniquelocal (comma-separated)',
      ).env('BREEZE_TRUST_PROXY'),
    )
    .option(
      '--allow-http-issuers',
      'accept http:// OIDC issuers on loopback addresses, and issuers on private addresses (development and tests only: the private-address guard is off for every issuer; https and public addresses otherwise)',
    )
    .option(
      '--allow-private-webhooks',
      'let webhooks target http and private, loopback or link-local addresses: development and tests only (env BREEZE_ALLOW_PRIVATE_WEBHOOKS=1)',
    )
    .addHelpText(
      'after',
      `
Examples:
  $ breeze serve                                   http://127.0.0.1:4455, data in ~/.breeze/server
  $ breeze serve --port 0 --data-dir ./data        a free port, a project-local database
  $ breeze serve --host 0.0.0.0 --public-url https://breeze.example.com --smtp-url smtp://mail:25
  $ breeze serve --database-url postgres://breeze@db/breeze --signup closed
  $ breeze serve --jwt-alg EdDSA                   JWTs and JWKS verifiable by PyJWT
  $ breeze serve --trust-proxy 10.0.0.0/8          behind a load balancer in 10.0.0.0/8
  $ breeze serve --audit-retention-days 90         audit events older than 90 days are deleted
  $ breeze serve --allow-private-webhooks          webhooks to http://127.0.0.1:... (development)`,
    )
    .action(async (opts: ServeCommandOptions, cmd: Command) => {
      await runServe(opts, await host.context(cmd));
    });
}
