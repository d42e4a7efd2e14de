import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';

interface SigningKey {
  kid: string;
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  jwk: JWK;
}

async function newKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, privateKey, jwk };
}

/**
 * A local OIDC issuer on 127.0.0.1 (http): discovery document, JWKS (keys made with jose), key
 * rotation, and a stand-in for the GitHub Actions token endpoint (`ACTIONS_ID_TOKEN_REQUEST_URL`:
 * `GET ?audience=` with `Authorization: bearer <request token>` -> `{"value": "<jwt>"}`).
 */
export interface TestIssuer {
  /** the issuer URL (`iss`) */
  url: string;
  /** the Actions token endpoint (with a query string already, like the real one) */
  actionsUrl: string;
  /** the bearer the Actions endpoint wants */
  actionsRequestToken: string;
  /** claims every token of the Actions endpoint carries (besides iss, aud, exp, iat, nbf, jti) */
  actionsClaims: Record<string, unknown>;
  /** counts of requests by path */
  hits: Record<string, number>;
  /** audiences the Actions endpoint was asked for */
  requestedAudiences: string[];
  sign(
    claims: JWTPayload,
    opts?: {
      kid?: string;
      expiresIn?: number;
      notBefore?: number;
      issuedAt?: number;
      key?: 'current' | 'stranger';
    },
  ): Promise<string>;
  /** adds a new key and makes it the signing key; `dropOld` also removes the previous ones from the JWKS */
  rotate(opts?: { dropOld?: boolean }): Promise<string>;
  currentKid(): string;
  close(): Promise<void>;
}

export async function startTestIssuer(opts: { claims?: Record<string, unknown> } = {}): Promise<TestIssuer> {
  let keys: SigningKey[] = [await newKey(`k1-${randomUUID().slice(0, 8)}`)];
  let current = keys[0] as SigningKey;
  const stranger = await newKey('stranger');
  const hits: Record<string, number> = {};
  const requestedAudiences: string[] = [];
  const actionsRequestToken = `req-${randomUUID()}`;
  const actionsClaims = opts.claims ?? {
    sub: 'repo:acme/api:ref:refs/heads/main',
    repository: 'acme/api',
    repository_owner: 'acme',
    ref: 'refs/heads/main',
    workflow: 'deploy',
  };
  let url = '';

  async function sign(
    claims: JWTPayload,
    o: {
      kid?: string;
      expiresIn?: number;
      notBefore?: number;
      issuedAt?: number;
      key?: 'current' | 'stranger';
    } = {},
  ): Promise<string> {
    const key = o.key === 'stranger' ? stranger : current;
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ jti: randomUUID(), ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: o.kid ?? key.kid, typ: 'JWT' })
      .setIssuer(typeof claims.iss === 'string' ? claims.iss : url)
      .setIssuedAt(now + (o.issuedAt ?? 0))
      .setNotBefore(now + (o.notBefore ?? 0))
      .setExpirationTime(now + (o.expiresIn ?? 300))
      .sign(key.privateKey);
  }

  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    hits[u.pathname] = (hits[u.pathname] ?? 0) + 1;
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (u.pathname === '/.well-known/openid-configuration') {
      json(200, { issuer: url, jwks_uri: `${url}/keys`, id_token_signing_alg_values_supported: ['RS256'] });
    } else if (u.pathname === '/keys') {
      json(200, { keys: keys.map((k) => k.jwk) });
    } else if (u.pathname === '/actions/token') {
      if (req.headers.authorization !== `bearer ${actionsRequestToken}`) return json(401, { message: 'no' });
      const audience = u.searchParams.get('audience') ?? '';
      requestedAudiences.push(audience);
      sign({ ...actionsClaims, aud: audience }).then(
        (value) => json(200, { count: 1, value }),
        () => json(500, {}),
      );
    } else {
      json(404, {});
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    actionsUrl: `${url}/actions/token?api-version=2.0`,
    actionsRequestToken,
    actionsClaims,
    hits,
    requestedAudiences,
    sign,
    async rotate(o = {}) {
      const next = await newKey(`k${keys.length + 1}-${randomUUID().slice(0, 8)}`);
      keys = o.dropOld ? [next] : [...keys, next];
      current = next;
      return next.kid;
    },
    currentKid: () => current.kid,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
