import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Resolver } from './services/webhook-target.js';
import type { WebhookTuning } from './services/webhook-tuning.js';

export type SignupPolicy = 'open' | 'closed';

/**
 * The JWS algorithm name Breeze JWTs and the JWKS carry. Both mean Ed25519 signatures with the same
 * keys: `Ed25519` is RFC 9864's fully-specified name (the default), `EdDSA` RFC 8037's, which
 * verifiers that predate RFC 9864 (PyJWT, for one) need.
 */
export const JWT_ALGS = ['Ed25519', 'EdDSA'] as const;
export type JwtAlg = (typeof JWT_ALGS)[number];

/** Everything `buildApp` needs to know about its deployment. */
export interface ServerConfig {
  /** Base URL users' browsers reach the server at; used in links, mails and JWT `iss`. */
  publicUrl: string;
  signup: SignupPolicy;
  /** API-key requests per minute per key; 0 turns the limit off. */
  rateLimitPerKey: number;
  /** How long a verified key may be served from memory; bounds how late a revocation takes effect. */
  keyCacheTtlMs: number;
  /** Algorithm name of issued JWTs and of the JWKS entries; tokens carrying the other one are refused. */
  jwtAlg: JwtAlg;
  /** Pepper for HMAC-SHA-256 of secrets; kept outside the database. */
  pepper: Buffer | null;
  /** Directory for the dev outbox and other local state (SQLite deployments). */
  dataDir?: string;
  /**
   * A shared database (PostgreSQL) without a pepper: this instance's own secret (kept in its data
   * dir: resolveInstanceSecret), under which it encrypts the JWT signing keys it creates. Each such
   * instance then signs with keys of its own; every instance publishes and accepts all of them.
   */
  instanceSecret?: Buffer | null;
  /** Set when the server runs inside a CLI command: it may show dev mail to the user. */
  embedded?: boolean;
  /** Audit events older than this many days are deleted by a background pruner (default 365). */
  auditRetentionDays: number;
  /** `--allow-private-webhooks`: webhook targets may be http and private or loopback addresses (dev, tests). */
  allowPrivateWebhooks?: boolean;
  /**
   * `--trust-proxy`: addresses and ranges of reverse proxies whose `X-Forwarded-For` is believed
   * (see parseTrustedProxies); none by default, and then a client is the address that connects.
   */
  trustProxy?: string[];
  /** Webhook worker timings and host resolution (tests shorten them); defaults in webhook-worker.ts. */
  webhooks?: WebhookTuning;
  /** Per-key usage counters (requests, rejected per hour); false turns counting off (benchmarks). */
  countUsage: boolean;
  /** How often counted usage is written to the database (batched, additive). */
  usageFlushMs: number;
  /**
   * `GET /v1/keys/events`: the keep-alive comment interval. PLATFORM.md: a ping at least every 15 s,
   * so the default stays well under it (timer drift and a busy event loop never stretch a gap past 15 s).
   */
  eventsPingMs: number;
  /** How often an instance looks for keys whose expiry (e.g. a rotation's grace end) just passed. */
  keyExpiryPollMs: number;
  /** Concurrent event streams one key may hold open. */
  maxEventStreamsPerKey: number;
  /** Accept `http://` OIDC issuers on loopback addresses (`breeze serve --allow-http-issuers`; tests only). */
  allowHttpIssuers?: boolean;
  /** Least time between two JWKS fetches of one issuer for an unknown `kid` (default 30 s; tests lower it). */
  oidcJwksCooldownMs?: number;
  /** How OIDC issuer hosts are resolved for the private-address guard (tests: a name that points at 127.0.0.1). */
  oidcResolve?: Resolver;
}

export function defaultConfig(overrides: Partial<ServerConfig> = {}): ServerConfig {
  return {
    publicUrl: 'http://127.0.0.1:4455',
    signup: 'open',
    rateLimitPerKey: 600,
    keyCacheTtlMs: 500,
    jwtAlg: 'Ed25519',
    pepper: null,
    auditRetentionDays: 365,
    countUsage: true,
    usageFlushMs: 5000,
    eventsPingMs: 10_000,
    keyExpiryPollMs: 250,
    maxEventStreamsPerKey: 5,
    ...overrides,
  };
}

const PEPPER_FILE = 'pepper';

/**
 * The pepper: `BREEZE_PEPPER` when set (it must be the same on every instance of a shared
 * deployment). Otherwise, for SQLite, a random one kept in `<dataDir>/pepper` (0600), created on
 * first start, so stolen database files alone cannot be used to test guesses. A shared database
 * (PostgreSQL) passes no dataDir: there is no safe local default — instances with different data
 * dirs would hash differently and refuse each other's keys — so without `BREEZE_PEPPER` secrets are
 * hashed with plain SHA-256 (null here) and `breeze serve` warns.
 */
export function resolvePepper(
  dataDir: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Buffer | null {
  const fromEnv = env.BREEZE_PEPPER;
  if (fromEnv) return Buffer.from(fromEnv, 'utf8');
  if (!dataDir) return null;
  return localSecret(dataDir, PEPPER_FILE);
}

const INSTANCE_SECRET_FILE = 'instance-secret';

/**
 * This instance's own secret, `<dataDir>/instance-secret` (0600, created on first start): what an
 * instance of a shared database without `BREEZE_PEPPER` encrypts its JWT signing keys with, so their
 * private halves are never stored in the database in the clear (see JwtService).
 */
export function resolveInstanceSecret(dataDir: string): Buffer {
  return localSecret(dataDir, INSTANCE_SECRET_FILE);
}

/** 32 random bytes kept in `<dataDir>/<name>` (0600), created on first use. */
function localSecret(dataDir: string, name: string): Buffer {
  const file = join(dataDir, name);
  try {
    return readSecret(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(32);
  // Written whole under a temporary name, then linked into place: `link` fails with EEXIST when
  // another process won the race on a fresh data dir, and no reader ever sees the file half-written
  // (an 'wx' write leaves it empty for a moment: a racer read an empty secret, i.e. none at all).
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, `${secret.toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(tmp, 0o600);
    linkSync(tmp, file);
    return secret;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return readSecret(file);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** The secret in `file`; an empty file is an error, never "no secret" (hashing or signing without one). */
function readSecret(file: string): Buffer {
  const secret = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64url');
  if (secret.length === 0) {
    throw new Error(`${file} is empty: restore it from a backup (a new one would not match existing data)`);
  }
  return secret;
}
