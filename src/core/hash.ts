import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Hashes a secret (API key, code, session token) for storage and lookup. With a pepper (kept outside
 * the database), HMAC-SHA-256; without, SHA-256. Output: base64url.
 */
export type SecretHasher = (secret: string) => string;

export function createSecretHasher(pepper?: Buffer | string | null): SecretHasher {
  if (pepper && pepper.length > 0) {
    return (secret) => createHmac('sha256', pepper).update(secret).digest('base64url');
  }
  return sha256;
}

/** PKCE S256 (RFC 7636): base64url(SHA-256(verifier)), computed alike by the CLI and the server. */
export function pkceChallenge(verifier: string): string {
  return sha256(verifier);
}

export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

/** Constant-time string comparison (lengths may differ). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  if (ab.length !== bb.length) return false;
  return timingSafeEqual(ab, bb);
}
