import { join } from 'node:path';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { buildApp } from './app.js';
import {
  type JwtAlg,
  resolveInstanceSecret,
  resolvePepper,
  type ServerConfig,
  type SignupPolicy,
} from './config.js';
import type { Mailer, MailMessage } from './mail/mailer.js';
import { OutboxMailer } from './mail/outbox.js';
import { openStore, type Store } from './store/index.js';

export interface ServeOptions {
  host: string;
  /** 0 picks a free port */
  port: number;
  dataDir: string;
  databaseUrl?: string;
  smtpUrl?: string;
  publicUrl?: string;
  signup?: SignupPolicy;
  rateLimitPerKey?: number;
  /** JWS algorithm name of JWTs and the JWKS (default `Ed25519`) */
  jwtAlg?: JwtAlg;
  /** days audit events are kept (default 365; 0 keeps them forever) */
  auditRetentionDays?: number;
  logger?: FastifyServerOptions['logger'];
  /** set when the server runs inside a CLI command */
  embedded?: boolean;
  onMail?: (m: MailMessage) => void;
  /** webhooks may target http and private/loopback addresses (development, tests) */
  allowPrivateWebhooks?: boolean;
  /** reverse proxies whose X-Forwarded-For is believed (`--trust-proxy`, parseTrustedProxies) */
  trustProxy?: string[];
  /** extra config, mostly for tests */
  config?: Partial<ServerConfig>;
}

export interface RunningServer {
  app: FastifyInstance;
  store: Store;
  url: string;
  close(): Promise<void>;
}

async function createMailer(opts: ServeOptions): Promise<Mailer> {
  if (opts.smtpUrl) {
    const { SmtpMailer } = await import('./mail/smtp.js');
    return new SmtpMailer(opts.smtpUrl);
  }
  return new OutboxMailer(join(opts.dataDir, 'outbox'), undefined, opts.onMail);
}

/** Opens the store, builds the app and listens. Used by `breeze serve` and the CLI's embedded mode. */
export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const store = await openStore({ dataDir: opts.dataDir, databaseUrl: opts.databaseUrl });
  let mailer: Mailer | undefined;
  try {
    // A shared database gets no per-data-dir pepper: every instance must hash alike (see resolvePepper).
    const pepper = resolvePepper(opts.databaseUrl ? undefined : opts.dataDir);
    mailer = await createMailer(opts);
    const app = await buildApp({
      store,
      mailer,
      logger: opts.logger,
      config: {
        signup: opts.signup ?? 'open',
        rateLimitPerKey: opts.rateLimitPerKey ?? 600,
        jwtAlg: opts.jwtAlg ?? 'Ed25519',
        auditRetentionDays: opts.auditRetentionDays ?? 365,
        pepper,
        // its own JWT signing keys, encrypted under a secret of its data dir (see JwtService)
        instanceSecret: opts.databaseUrl && !pepper ? resolveInstanceSecret(opts.dataDir) : null,
        dataDir: opts.dataDir,
        embedded: opts.embedded ?? false,
        allowPrivateWebhooks: opts.allowPrivateWebhooks ?? false,
        ...(opts.trustProxy?.length ? { trustProxy: opts.trustProxy } : {}),
        // a placeholder until we know the port; replaced below when no public URL is given
        publicUrl: opts.publicUrl ?? 'http://127.0.0.1',
        ...opts.config,
      },
    });
    if (opts.databaseUrl && !pepper) {
      app.log.warn(
        'BREEZE_PEPPER is not set: secrets are hashed with plain SHA-256, and each instance signs JWTs and webhooks with keys of its own (encrypted under <data dir>/instance-secret). Set the same BREEZE_PEPPER on every instance (before the first start: changing it invalidates existing keys).',
      );
    }
    if (opts.allowPrivateWebhooks) {
      app.log.warn(
        '--allow-private-webhooks: webhooks may target http and private, loopback or link-local addresses. Use it for development and tests only.',
      );
    }
    const address = await app.listen({ host: opts.host, port: opts.port });
    const url = address.replace('://[::1]', '://[::1]').replace('://0.0.0.0', '://127.0.0.1');
    if (!opts.publicUrl) app.breeze.config.publicUrl = url;
    const m = mailer;
    return {
      app,
      store,
      url,
      async close() {
        await app.close();
        await m.close?.();
        await store.close();
      },
    };
  } catch (err) {
    await mailer?.close?.();
    await store.close();
    throw err;
  }
}
