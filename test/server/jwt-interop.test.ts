import { execFile, spawnSync } from 'node:child_process';
import { createPrivateKey, sign } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultConfig, type JwtAlg } from '../../src/server/config.js';
import { JwtService } from '../../src/server/jwt.js';
import type { MailMessage } from '../../src/server/mail/mailer.js';
import { type RunningServer, startServer } from '../../src/server/serve.js';
import { openStore } from '../../src/server/store/index.js';
import { runCli, spawnCli, stopServe, tempConfigDir, waitForOutput } from '../helpers/cli.js';
import { requirePart } from '../helpers/require.js';
import { codeFromSubject } from '../helpers/smtp.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');

// Debian's python3 (the one python3-jwt installs into), not whatever python3 comes first on PATH
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const probe = spawnSync(PYTHON, ['-c', 'import jwt, cryptography; print(jwt.__version__)'], {
  encoding: 'utf8',
});
const skipPy = requirePart(
  'PyJWT',
  probe.status === 0,
  `${PYTHON} cannot import jwt and cryptography (apt-get install python3-jwt python3-cryptography)`,
);

/** The Python example of docs/verifying-jwts.md, verbatim, with a line that prints the claims. */
function docExample(): string {
  const doc = readFileSync(join(root, 'docs', 'verifying-jwts.md'), 'utf8');
  const code = /```python\n([\s\S]*?)```/.exec(doc)?.[1];
  if (!code) throw new Error('docs/verifying-jwts.md has no python example');
  return `${code}\nimport json, sys\nprint(json.dumps(verify_breeze_jwt(sys.argv[1])))\n`;
}

const b64json = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));

let server: RunningServer | undefined;
let dataDir: string | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  dataDir = undefined;
});

/** A server on a real port, and a JWT it issued through the email-code flow over HTTP. */
async function serveAndIssue(jwtAlg?: JwtAlg): Promise<{ url: string; token: string; userId: string }> {
  dataDir = mkdtempSync(join(tmpdir(), 'breeze-jwt-interop-'));
  let gotMail!: (m: MailMessage) => void;
  const mail = new Promise<MailMessage>((resolve) => {
    gotMail = resolve;
  });
  server = await startServer({ host: '127.0.0.1', port: 0, dataDir, onMail: gotMail, jwtAlg });
  const { url } = server;
  const post = async (path: string, body: object) => {
    const res = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, string> };
  };
  const started = await post('/auth/code', { email: 'py@example.com', type: 'jwt' });
  expect(started.status).toBe(201);
  const code = codeFromSubject((await mail).subject);
  const verified = await post(`/auth/code/${started.body.id}/verifications`, { code });
  expect(verified.status).toBe(200);
  const token = verified.body.token as string;
  // the server accepts its own token, whichever algorithm name it carries
  const me = await fetch(`${url}/v1/me`, { headers: { authorization: `Bearer ${token}` } });
  expect(me.status).toBe(200);
  const userId = ((await me.json()) as { user: { id: string } }).user.id;
  return { url, token, userId };
}

async function jwks(url: string): Promise<{ keys: { alg: string; kid: string }[] }> {
  return (await fetch(`${url}/.well-known/jwks.json`)).json() as Promise<{
    keys: { alg: string; kid: string }[];
  }>;
}

describe.skipIf(skipPy)('JWTs verified by PyJWT (Debian python3-jwt)', () => {
  it('with --jwt-alg EdDSA: the JWKS and the token say EdDSA, and the documented Python code verifies it', async () => {
    const { url, token, userId } = await serveAndIssue('EdDSA');
    const header = b64json(token.split('.')[0] as string);
    expect(header).toMatchObject({ alg: 'EdDSA', typ: 'JWT' });
    const set = await jwks(url);
    expect(set.keys.map((k) => k.alg)).toEqual(['EdDSA']);
    expect(set.keys[0]?.kid).toBe(header.kid);

    const env = { ...process.env, BREEZE_SERVER: url };
    const { stdout } = await run(PYTHON, ['-c', docExample(), token], { env, timeout: 30_000 });
    const claims = JSON.parse(stdout) as Record<string, unknown>;
    expect(claims).toMatchObject({ sub: userId, aud: 'breeze', iss: url });

    // and it is a real check: the same code refuses a token whose payload was changed
    const [h, p, s] = token.split('.') as [string, string, string];
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...b64json(p), sub: 'usr_someone_else' })).toString('base64url')}.${s}`;
    const refused = await run(PYTHON, ['-c', docExample(), forged], { env, timeout: 30_000 }).then(
      () => null,
      (err: { code?: number; stderr?: string }) => err,
    );
    expect(refused?.code).not.toBe(0);
    expect(refused?.stderr).toMatch(/InvalidSignatureError|Signature verification failed/);
  });
});

describe('the default algorithm name stays Ed25519 (RFC 9864)', () => {
  it('JWKS entries and token headers say Ed25519', async () => {
    const { url, token } = await serveAndIssue();
    expect(b64json(token.split('.')[0] as string).alg).toBe('Ed25519');
    expect((await jwks(url)).keys.map((k) => k.alg)).toEqual(['Ed25519']);
  });
});

describe('a server accepts only its own algorithm name', () => {
  it('an EdDSA server refuses a token signed with its own key under the name Ed25519, and vice versa', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'breeze-jwt-alg-'));
    const store = await openStore({ dataDir });
    try {
      const services = {
        EdDSA: new JwtService({ store, config: defaultConfig({ jwtAlg: 'EdDSA' }), clock: () => new Date() }),
        Ed25519: new JwtService({ store, config: defaultConfig(), clock: () => new Date() }),
      };
      await services.EdDSA.init();
      // no pepper: the private half is stored in the clear, so the test can sign with the server's key
      const row = await store.db.selectFrom('signing_keys').selectAll().executeTakeFirstOrThrow();
      const ownKey = createPrivateKey({ key: JSON.parse(row.private_jwk), format: 'jwk' });
      const now = Math.floor(Date.now() / 1000);
      const claims = {
        iss: defaultConfig().publicUrl,
        aud: 'breeze',
        sub: 'usr_x',
        iat: now,
        exp: now + 3600,
      };
      const signAs = (alg: string) => {
        const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
        const input = `${enc({ alg, kid: row.kid, typ: 'JWT' })}.${enc(claims)}`;
        return `${input}.${sign(null, Buffer.from(input), ownKey).toString('base64url')}`;
      };
      expect((await services.EdDSA.verify(signAs('EdDSA')))?.sub).toBe('usr_x');
      expect(await services.EdDSA.verify(signAs('Ed25519'))).toBeNull();
      expect((await services.Ed25519.verify(signAs('Ed25519')))?.sub).toBe('usr_x');
      expect(await services.Ed25519.verify(signAs('EdDSA'))).toBeNull();
    } finally {
      await store.close();
    }
  });
});

describe('breeze serve --jwt-alg', () => {
  it('EdDSA publishes EdDSA keys; an unknown name is a usage error (exit 2)', async () => {
    const t = tempConfigDir();
    const proc = spawnCli(['serve', '--port', '0', '--data-dir', join(t.dir, 'data'), '--jwt-alg', 'EdDSA'], {
      configDir: t.dir,
    });
    try {
      proc.stdout?.resume();
      const m = await waitForOutput(proc, /listening on (http:\/\/127\.0\.0\.1:\d+)/);
      expect((await jwks(m[1] as string)).keys.map((k) => k.alg)).toEqual(['EdDSA']);
      const bad = await runCli(['serve', '--port', '0', '--jwt-alg', 'RS256'], { configDir: t.dir });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/Ed25519.*EdDSA|EdDSA.*Ed25519/);
    } finally {
      await stopServe(proc);
      t.cleanup();
    }
  }, 60_000);
});
