import { randomBytes } from 'node:crypto';
import { pkceChallenge } from '../../core/hash.js';

export interface Pkce {
  /** 43 characters of base64url (256 bits): stays in this process, sent only to the exchange */
  verifier: string;
  /** base64url(SHA-256(verifier)), sent when the login is created */
  challenge: string;
  method: 'S256';
}

/** A fresh PKCE pair (RFC 7636, S256 only). */
export function createPkce(): Pkce {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: challengeOf(verifier), method: 'S256' };
}

export function challengeOf(verifier: string): string {
  return pkceChallenge(verifier);
}

/** An unguessable `state` that ties the loopback redirect to this run. */
export function createState(): string {
  return randomBytes(16).toString('base64url');
}
