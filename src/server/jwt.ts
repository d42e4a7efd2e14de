import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  randomBytes,
  sign as signBytes,
} from 'node:crypto';
import { type JWTPayload, jwtVerify, SignJWT } from 'jose';
import type { JwtAlg } from './config.js';
import type { AuthContext, ServerContext } from './context.js';
import { type SigningKeyRow, SigningKeysRepo, withSigningKeyLock } from './store/signing-keys.js';

/**
 * The default JWS algorithm name of Breeze JWTs (RFC 9864's fully-specified name; jose 6 knows it)
 * and the algorithm recorded with every signing key. `config.jwtAlg: 'EdDSA'` publishes and signs
 * the same keys under RFC 8037's name instead.
 */
export const JWT_ALG = 'Ed25519';
export const JWT_AUDIENCE = 'breeze';
/** Token lifetime: `exp = iat + 3600`. */
export const JWT_TTL_S = 3600;
/** Allowed clock difference between the instances that sign and verify. */
const CLOCK_SKEW_S = 60;
/** Retired keys stay published (and accepted) this long: a token lifetime plus skew. */
export const RETIRED_KEY_RETENTION_MS = (JWT_TTL_S + 5 * 60) * 1000;
const ENCRYPTED_PREFIX = 'enc:v1:';
/**
 * The same AES-256-GCM form, under an instance secret rather than the pepper (ownKeysOnly): marked
 * apart so that an instance WITH a pepper (BREEZE_PEPPER set later, as serve's warning advises) knows
 * them for other instances' keys, never signs with them and replaces them, rather than taking the
 * newest for its current key and failing on every JWT and webhook until it aged out (90 days).
 */
const INSTANCE_PREFIX = 'enc:i1:';
/** How long an instance's own signing key (ownKeysOnly) stays current: see the constructor. */
export const OWN_KEY_MAX_AGE_MS = 86_400_000;

export interface PublicSigningJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  alg: JwtAlg;
  use: 'sig';
}

export interface IssuedJwt {
  token: string;
  /** RFC 3339 */
  expiresAt: string;
}

export interface JwtServiceOptions {
  /** How long the key set read from the database is trusted before it is read again. */
  refreshMs?: number;
  /** A current key older than this is rotated automatically (by whichever instance notices first). */
  maxKeyAgeMs?: number;
}

interface LoadedKey {
  kid: string;
  createdAt: string;
  retiredAt: string | null;
  publicKey: KeyObject;
  /** null when the stored private half cannot be decrypted with this instance's pepper */
  privateKey: KeyObject | null;
  /** encrypted under an instance secret (INSTANCE_PREFIX) */
  instanceKey: boolean;
  jwk: PublicSigningJwk;
}

/** Both encrypted forms have prefixes of the same length. */
function isEncrypted(stored: string): boolean {
  return stored.startsWith(ENCRYPTED_PREFIX) || stored.startsWith(INSTANCE_PREFIX);
}

/** RFC 7638 thumbprint of an Ed25519 public key, base64url: a stable, collision-free `kid`. */
function thumbprint(x: string): string {
  return createHash('sha256').update(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`).digest('base64url');
}

/**
 * Issues and verifies the Ed25519 JWTs of the email-code flow and serves the JWKS. Signing keys live
 * in the database (`signing_keys`), so every instance sharing it signs with the same current key and
 * accepts the others' tokens; the private half is encrypted with a key derived from the server's
 * pepper when there is one. Keys are created on first start and rotated with `rotateSigningKey()`
 * (or automatically after `maxKeyAgeMs`); retired keys stay published for a token lifetime.
 *
 * A shared database (PostgreSQL) without a pepper has no secret all instances share, and a private
 * key must not sit there in the clear (whoever reads the table could forge any user's token). There
 * each instance keeps keys of its OWN (`ownKeysOnly`): encrypted under its instance secret
 * (`config.instanceSecret`, from its data dir), which no other instance can decrypt. It signs with
 * its own current key and rotates only its own; the database publishes every instance's public
 * halves, so all of them still serve one JWKS and accept each other's tokens and webhook signatures.
 */
export class JwtService {
  private readonly refreshMs: number;
  private readonly maxKeyAgeMs: number;
  private readonly wrapKey: Buffer | null;
  /** true: each instance signs with keys of its own (shared database, no pepper; see above) */
  private readonly ownKeysOnly: boolean;
  private keys: LoadedKey[] = [];
  private loadedAt = Number.NEGATIVE_INFINITY;
  private lastMissLoad = Number.NEGATIVE_INFINITY;
  private loading: Promise<void> | null = null;

  constructor(
    private readonly ctx: Pick<ServerContext, 'store' | 'config' | 'clock'>,
    opts: JwtServiceOptions = {},
  ) {
    this.refreshMs = opts.refreshMs ?? 30_000;
    const pepper = ctx.config.pepper;
    const own = ctx.config.instanceSecret;
    this.ownKeysOnly = !(pepper && pepper.length > 0) && ctx.store.engine === 'postgres' && !!own?.length;
    // An instance's own keys live a day: no instance can tell the key of one whose data dir is lost
    // from a running one's, so a key is retired by whoever rotates next once it is two days old
    // (its owner, still running, then simply makes a new one). A shared key lives 90 days.
    this.maxKeyAgeMs = opts.maxKeyAgeMs ?? (this.ownKeysOnly ? OWN_KEY_MAX_AGE_MS : 90 * 86_400_000);
    this.wrapKey =
      pepper && pepper.length > 0
        ? Buffer.from(hkdfSync('sha256', pepper, 'breeze', 'signing-key-wrap v1', 32))
        : this.ownKeysOnly && own
          ? Buffer.from(hkdfSync('sha256', own, 'breeze', 'signing-key-wrap instance v1', 32))
          : null;
  }

  /**
   * False on a shared database (PostgreSQL) with neither a pepper nor an instance secret (a server
   * built without a data dir): the private key could only be stored there in the clear, and anyone
   * able to read that table could then forge tokens for any user. Such a server issues no JWTs.
   */
  get enabled(): boolean {
    return this.wrapKey !== null || this.ctx.store.engine !== 'postgres';
  }

  /** Creates the first signing key when there is none (safe when several instances start at once). */
  async init(): Promise<void> {
    if (!this.enabled) return;
    await this.load(true);
    if (!this.currentLoaded()) await this.createKey((current) => !current);
  }

  /** Signs a 1-hour token for `userId`. */
  async issue(userId: string): Promise<IssuedJwt> {
    if (!this.enabled) throw new Error('JWTs are disabled on this server (no BREEZE_PEPPER)');
    const key = await this.signingKey();
    const iat = Math.floor(this.ctx.clock().getTime() / 1000);
    const exp = iat + JWT_TTL_S;
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: this.alg, kid: key.kid, typ: 'JWT' })
      .setIssuer(this.ctx.config.publicUrl)
      .setAudience(JWT_AUDIENCE)
      .setSubject(userId)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(randomBytes(12).toString('base64url'))
      .sign(key.privateKey as KeyObject);
    return { token, expiresAt: new Date(exp * 1000).toISOString() };
  }

  /**
   * Signs `data` with the current signing key (raw Ed25519, base64url): webhook signatures, which
   * receivers check against the same JWKS as JWTs, holding no shared secret.
   */
  async signDetached(data: Buffer): Promise<{ kid: string; sig: string }> {
    if (!this.enabled) throw new Error('signing is disabled on this server (no BREEZE_PEPPER)');
    const key = await this.signingKey();
    return { kid: key.kid, sig: signBytes(null, data, key.privateKey).toString('base64url') };
  }

  /** The claims of a valid token (signature, `kid`, `iss`, `aud`, `exp`), else null. */
  async verify(token: string): Promise<JWTPayload | null> {
    try {
      const { payload } = await jwtVerify(
        token,
        async (header) => {
          const key = header.kid ? await this.findKey(header.kid) : undefined;
          if (!key) throw new Error('unknown kid');
          return key.publicKey;
        },
        {
          // only the configured name: a token claiming the other one was not issued by this server
          algorithms: [this.alg],
          issuer: this.ctx.config.publicUrl,
          audience: JWT_AUDIENCE,
          currentDate: this.ctx.clock(),
          clockTolerance: CLOCK_SKEW_S,
          requiredClaims: ['sub', 'iat', 'exp'],
        },
      );
      const { iat, exp } = payload as { iat: number; exp: number };
      if (exp - iat > JWT_TTL_S) return null;
      return payload;
    } catch {
      return null;
    }
  }

  /** The `jwt` authenticator: a valid token of an existing user grants everything that user can reach. */
  async authenticate(token: string): Promise<AuthContext | null> {
    if (!this.enabled) return null;
    const payload = await this.verify(token);
    if (!payload?.sub) return null;
    const user = await this.ctx.store.users.get(payload.sub);
    if (!user) return null;
    return { type: 'jwt', user: { id: user.id, email: user.email }, scopes: ['read', 'write', 'admin'] };
  }

  /** The public keys: the current one and those retired less than a token lifetime ago. */
  async jwks(): Promise<{ keys: PublicSigningJwk[] }> {
    if (!this.enabled) return { keys: [] };
    await this.load(false);
    if (!this.currentLoaded()) await this.init();
    return { keys: this.keys.map((k) => k.jwk) };
  }

  /**
   * Makes a new key current and retires the others (they stay in the JWKS for a token lifetime, so
   * tokens they signed keep working). Concurrency-safe across instances sharing the database: the
   * change runs under a database lock. Returns the new key's `kid`.
   */
  async rotateSigningKey(): Promise<{ kid: string }> {
    return this.createKey(() => true);
  }

  /** The algorithm name tokens and JWKS entries carry (`config.jwtAlg`). */
  private get alg(): JwtAlg {
    return this.ctx.config.jwtAlg ?? JWT_ALG;
  }

  /** The key this instance signs with: the newest current one (of its own, when ownKeysOnly). */
  private currentLoaded(): LoadedKey | undefined {
    return this.keys.find(
      (k) => k.retiredAt === null && (this.ownKeysOnly ? k.privateKey !== null : !k.instanceKey),
    );
  }

  /** currentLoaded's row as the database has it now (under the signing-key lock). */
  private async currentRow(repo: SigningKeysRepo): Promise<SigningKeyRow | undefined> {
    const current = await repo.listCurrent();
    if (!this.ownKeysOnly) return current.find((row) => !row.private_jwk.startsWith(INSTANCE_PREFIX));
    return current.find((row) => this.isOwn(row));
  }

  /** ownKeysOnly: a key this instance created (its private half decrypts under the instance secret). */
  private isOwn(row: SigningKeyRow): boolean {
    if (!isEncrypted(row.private_jwk)) return false;
    try {
      this.unwrap(row.kid, row.private_jwk);
      return true;
    } catch {
      return false;
    }
  }

  private async signingKey(): Promise<LoadedKey & { privateKey: KeyObject }> {
    await this.load(false);
    let key = this.currentLoaded();
    const now = this.ctx.clock().getTime();
    if (!key || now - Date.parse(key.createdAt) > this.maxKeyAgeMs) {
      // re-checked under the lock: when several instances notice at once, only one rotates
      await this.createKey((current) => !current || now - Date.parse(current.created_at) > this.maxKeyAgeMs);
      key = this.currentLoaded();
    }
    if (!key) throw new Error('no current JWT signing key');
    if (!key.privateKey) {
      throw new Error(
        `JWT signing key ${key.kid} cannot be decrypted: every instance must share the same pepper (BREEZE_PEPPER)`,
      );
    }
    return key as LoadedKey & { privateKey: KeyObject };
  }

  private async findKey(kid: string): Promise<LoadedKey | undefined> {
    await this.load(false);
    let key = this.keys.find((k) => k.kid === kid);
    // A key another instance created since our last read: read again (at most 4 times a second, so
    // tokens with made-up kids cannot turn into a query each).
    const now = this.ctx.clock().getTime();
    if (!key && Math.abs(now - this.lastMissLoad) >= 250) {
      this.lastMissLoad = now;
      await this.load(true);
      key = this.keys.find((k) => k.kid === kid);
    }
    return key;
  }

  /**
   * Under the signing-key lock, creates a new current key (retiring the others) when `needed` says
   * so for the current key as the database has it now; returns the current kid either way.
   */
  private async createKey(needed: (current: SigningKeyRow | undefined) => boolean): Promise<{ kid: string }> {
    // never a private key in a shared database in the clear (rotateSigningKey has no other guard)
    if (!this.enabled) throw new Error('JWT signing is disabled on this server (no BREEZE_PEPPER)');
    const now = this.ctx.clock();
    const nowIso = now.toISOString();
    const kid = await withSigningKeyLock(this.ctx.store, async (repo) => {
      const current = await this.currentRow(repo);
      if (current && !needed(current)) return current.kid;
      const { publicKey, privateKey } = generateKeyPairSync('ed25519');
      const pub = publicKey.export({ format: 'jwk' }) as { x: string };
      const newKid = thumbprint(pub.x);
      await repo.insert({
        kid: newKid,
        alg: JWT_ALG,
        public_jwk: JSON.stringify({ kty: 'OKP', crv: 'Ed25519', x: pub.x }),
        private_jwk: this.wrap(newKid, JSON.stringify(privateKey.export({ format: 'jwk' }))),
        created_at: nowIso,
        retired_at: null,
      });
      if (this.ownKeysOnly) {
        // its own earlier keys, and any instance's key it would itself have rotated twice over by
        // now: that of an instance gone for good, which would otherwise stay published forever
        const mine = (await repo.listCurrent()).filter((r) => r.kid !== newKid && this.isOwn(r));
        const stale = new Date(now.getTime() - 2 * this.maxKeyAgeMs).toISOString();
        await repo.retireSome(
          mine.map((r) => r.kid),
          stale,
          nowIso,
        );
      } else {
        await repo.retireAllExcept(newKid, nowIso);
      }
      await repo.deleteRetiredBefore(new Date(now.getTime() - 2 * RETIRED_KEY_RETENTION_MS).toISOString());
      return newKid;
    });
    await this.load(true);
    return { kid };
  }

  private load(force: boolean): Promise<void> {
    if (!force && this.ctx.clock().getTime() - this.loadedAt < this.refreshMs) return Promise.resolve();
    if (this.loading) return this.loading;
    this.loading = (async () => {
      try {
        const now = this.ctx.clock().getTime();
        const rows = await new SigningKeysRepo(this.ctx.store.db).listLive(
          new Date(now - RETIRED_KEY_RETENTION_MS).toISOString(),
        );
        this.keys = rows.map((r) => this.toLoaded(r));
        this.loadedAt = now;
      } finally {
        this.loading = null;
      }
    })();
    return this.loading;
  }

  private toLoaded(row: SigningKeyRow): LoadedKey {
    const pub = JSON.parse(row.public_jwk) as { x: string };
    let privateKey: KeyObject | null = null;
    try {
      // another instance's key (ownKeysOnly): public only here, whatever its row holds
      if (this.ownKeysOnly && !isEncrypted(row.private_jwk)) throw new Error('not ours');
      // an instance key (see INSTANCE_PREFIX) with a pepper: another instance's, public only
      if (!this.ownKeysOnly && row.private_jwk.startsWith(INSTANCE_PREFIX)) throw new Error('not ours');
      privateKey = createPrivateKey({
        key: JSON.parse(this.unwrap(row.kid, row.private_jwk)),
        format: 'jwk',
      });
    } catch {
      privateKey = null;
    }
    return {
      kid: row.kid,
      createdAt: row.created_at,
      retiredAt: row.retired_at,
      publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: pub.x }, format: 'jwk' }),
      privateKey,
      instanceKey: row.private_jwk.startsWith(INSTANCE_PREFIX),
      jwk: { kty: 'OKP', crv: 'Ed25519', x: pub.x, kid: row.kid, alg: this.alg, use: 'sig' },
    };
  }

  /** AES-256-GCM with a key derived from the pepper, bound to the kid; plain JSON without a pepper. */
  private wrap(kid: string, plain: string): string {
    if (!this.wrapKey) return plain;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.wrapKey, iv);
    cipher.setAAD(Buffer.from(kid));
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return (
      (this.ownKeysOnly ? INSTANCE_PREFIX : ENCRYPTED_PREFIX) +
      Buffer.concat([iv, ct, cipher.getAuthTag()]).toString('base64url')
    );
  }

  private unwrap(kid: string, stored: string): string {
    if (!isEncrypted(stored)) return stored;
    if (!this.wrapKey) throw new Error('encrypted signing key but no pepper');
    const raw = Buffer.from(stored.slice(ENCRYPTED_PREFIX.length), 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', this.wrapKey, raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(kid));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString(
      'utf8',
    );
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** set by buildApp: issues and verifies JWTs, serves the JWKS, rotates signing keys */
    jwtService: JwtService;
  }
}
