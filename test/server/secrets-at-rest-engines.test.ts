/**
 * "Nothing leaks" on both engines: after keys are created and rotated, an email code is redeemed
 * for a key and for a JWT, a browser signs in, a CLI login runs in loopback mode (PKCE verifier,
 * user code, loopback code and state), an invitation is mailed and accepted, and a CI job's OIDC
 * token is exchanged, no plaintext key, code, verifier, JWT or session token is in any row of the
 * database (every table, read back as text), in the server's log lines, or in an error body
 * (secrets-at-rest.test.ts also searches the SQLite files and WAL byte for byte; the CLI's files
 * and `--verbose` traces: reliability/leaks.test.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { loggerOptions } from '../../src/server/logging.js';
import { InjectBrowser, latestOutboxCode } from '../helpers/browser.js';
import { testEngines } from '../helpers/engines.js';
import { startTestIssuer } from '../helpers/oidc-issuer.js';

const eng = testEngines();
afterAll(() => eng.stop());

/** Every table of the store as one text (rows as JSON), on either engine. */
async function everyRow(db: import('kysely').Kysely<unknown>, engine: string): Promise<string> {
  const tables =
    engine === 'postgres'
      ? (
          await sql<{ name: string }>`select table_name as name from information_schema.tables
            where table_schema = 'public' and table_type = 'BASE TABLE'`.execute(db)
        ).rows
      : (await sql<{ name: string }>`select name from sqlite_master where type = 'table'`.execute(db)).rows;
  expect(tables.length).toBeGreaterThan(5);
  let text = '';
  for (const { name } of tables) {
    const rows = (await sql`select * from ${sql.table(name)}`.execute(db)).rows;
    text += `${name}: ${JSON.stringify(rows)}\n`;
  }
  return text;
}

for (const e of eng.list) {
  describe.skipIf(e.skip)(e.name, () => {
    it('no plaintext key, code, verifier, JWT or session token in any table, log line or error body, through every login, an invitation and an OIDC exchange', async () => {
      const logs: string[] = [];
      const sink = new Writable({
        write(chunk, _enc, cb) {
          logs.push(String(chunk));
          cb();
        },
      });
      const issuer = await startTestIssuer();
      const s = await e.startServer({
        logger: { ...loggerOptions('debug'), stream: sink },
        config: { allowHttpIssuers: true, publicUrl: 'http://127.0.0.1:4455' },
      });
      /** error bodies: searched too */
      const errors: string[] = [];
      /** values that may be stored but never logged or sent in an error */
      const notLogged: string[] = [];
      try {
        const { apiKey: admin } = await s.seedKey({ email: 'leak@example.com' });
        const secrets: string[] = [admin];
        for (let i = 0; i < 5; i++) {
          const res = await s.app.inject({
            method: 'POST',
            url: '/v1/api-keys',
            headers: { 'xi-api-key': admin },
            payload: { name: `k${i}` },
          });
          expect(res.statusCode).toBe(201);
          secrets.push(res.json().api_key);
          const rotated = await s.app.inject({
            method: 'POST',
            url: `/v1/api-keys/${res.json().key_id}/rotate`,
            headers: { 'xi-api-key': admin },
            payload: {},
          });
          expect(rotated.statusCode).toBe(201);
          secrets.push(rotated.json().api_key);
        }
        const outbox = join(s.dataDir, 'outbox');
        for (const type of ['api_key', 'jwt'] as const) {
          const before = latestOutboxCode(outbox, 'leak@example.com');
          const start = await s.app.inject({
            method: 'POST',
            url: '/auth/code',
            payload: { email: 'leak@example.com', type },
          });
          expect(start.statusCode).toBe(201);
          await expect.poll(() => latestOutboxCode(outbox, 'leak@example.com')).not.toBe(before);
          const code = latestOutboxCode(outbox, 'leak@example.com') ?? '';
          secrets.push(code);
          const done = await s.app.inject({
            method: 'POST',
            url: `/auth/code/${start.json().id}/verifications`,
            payload: { code },
          });
          expect(done.statusCode).toBe(200);
          secrets.push(type === 'jwt' ? done.json().token : done.json().secret);
        }
        const b = new InjectBrowser(s.app);
        await b.signIn('leak@example.com', () => latestOutboxCode(outbox, 'leak@example.com'));
        const session = b.cookies.get('breeze_session') ?? '';
        expect(session.length).toBeGreaterThan(20);
        secrets.push(session, latestOutboxCode(outbox, 'leak@example.com') ?? '');

        // a CLI login in loopback mode: the verifier, user code, loopback code and state
        const verifier = randomBytes(32).toString('base64url');
        const state = randomBytes(16).toString('base64url');
        const login = await s.app.inject({
          method: 'POST',
          url: '/v1/cli/logins',
          payload: {
            code_challenge: createHash('sha256').update(verifier).digest('base64url'),
            code_challenge_method: 'S256',
            redirect_uri: 'http://127.0.0.1:51234/callback',
            state,
            client_name: 'breeze/0.1.0',
            hostname: 'laptop',
          },
        });
        expect(login.statusCode, login.body).toBe(201);
        const { login_id: loginId, user_code: userCode } = login.json() as Record<string, string>;
        const approved = await b.decide(userCode ?? '', 'approve');
        expect(approved.statusCode).toBe(303);
        const loopbackCode = new URL(String(approved.headers.location)).searchParams.get('code') ?? '';
        // a wrong verifier first: its error body is searched too
        const refused = await s.app.inject({
          method: 'POST',
          url: `/v1/cli/logins/${loginId}/exchange`,
          payload: { code_verifier: randomBytes(32).toString('base64url'), code: loopbackCode },
        });
        expect(refused.statusCode).toBe(400);
        errors.push(refused.body);
        const exchanged = await s.app.inject({
          method: 'POST',
          url: `/v1/cli/logins/${loginId}/exchange`,
          payload: { code_verifier: verifier, code: loopbackCode },
        });
        expect(exchanged.statusCode, exchanged.body).toBe(200);
        secrets.push(verifier, userCode ?? '', userCode?.replace('-', '') ?? '', loopbackCode);
        // the state is the CLI's own check of the redirect, echoed back to it: the server keeps it
        // to echo it (it is no credential), so it is searched in logs and error bodies only
        notLogged.push(state);
        secrets.push(exchanged.json().api_key);

        // an invitation: its mailed code
        const me = await s.app.inject({ method: 'GET', url: '/v1/me', headers: { 'xi-api-key': admin } });
        const orgId = me.json().org.id as string;
        const invited = await s.app.inject({
          method: 'POST',
          url: `/v1/orgs/${orgId}/invitations`,
          headers: { 'xi-api-key': admin },
          payload: { email: 'invitee@example.com', role: 'member' },
        });
        expect(invited.statusCode, invited.body).toBe(201);
        const inviteMail = () => {
          for (const f of readdirSync(outbox).sort().reverse()) {
            const eml = readFileSync(join(outbox, f), 'utf8');
            const m = /Your invitation code is ([0-9A-Z]{8})\./.exec(eml);
            if (eml.includes('To: invitee@example.com') && m) return m[1];
          }
          return undefined;
        };
        await expect.poll(inviteMail).toBeTruthy();
        const inviteCode = inviteMail() ?? '';
        expect(inviteCode).toMatch(/^[0-9A-Z]{8}$/);
        secrets.push(inviteCode);
        const invitee = new InjectBrowser(s.app);
        await invitee.signIn('invitee@example.com', () => latestOutboxCode(outbox, 'invitee@example.com'));
        secrets.push(invitee.cookies.get('breeze_session') ?? '');
        const jwtStart = await s.app.inject({
          method: 'POST',
          url: '/auth/code',
          payload: { email: 'invitee@example.com', type: 'jwt' },
        });
        const signInCode = latestOutboxCode(outbox, 'invitee@example.com');
        await expect.poll(() => latestOutboxCode(outbox, 'invitee@example.com')).not.toBe(signInCode);
        const jwtCode = latestOutboxCode(outbox, 'invitee@example.com') ?? '';
        const inviteeJwt = (
          await s.app.inject({
            method: 'POST',
            url: `/auth/code/${jwtStart.json().id}/verifications`,
            payload: { code: jwtCode },
          })
        ).json().token as string;
        secrets.push(jwtCode, inviteeJwt);
        const accepted = await s.app.inject({
          method: 'POST',
          url: `/v1/invitations/${invited.json().id}/accept`,
          headers: { authorization: `Bearer ${inviteeJwt}` },
          payload: { code: inviteCode },
        });
        expect(accepted.statusCode, accepted.body).toBe(200);

        // a CI job's OIDC token, exchanged for a short-lived key
        const trust = await s.app.inject({
          method: 'POST',
          url: `/v1/orgs/${orgId}/oidc-trusts`,
          headers: { 'xi-api-key': admin },
          payload: { issuer: issuer.url, audience: 'breeze-leaks', claims: { repository: 'acme/api' } },
        });
        expect(trust.statusCode, trust.body).toBe(201);
        const ciToken = await issuer.sign({
          aud: 'breeze-leaks',
          repository: 'acme/api',
          sub: 'repo:acme/api',
        });
        const oidc = await s.app.inject({
          method: 'POST',
          url: '/v1/oidc/exchange',
          payload: { token: ciToken },
        });
        expect(oidc.statusCode, oidc.body).toBe(200);
        secrets.push(ciToken, oidc.json().api_key);
        // the same token again (a replay): refused, and its error body searched
        const replay = await s.app.inject({
          method: 'POST',
          url: '/v1/oidc/exchange',
          payload: { token: ciToken },
        });
        expect(replay.statusCode).toBe(401);
        errors.push(replay.body);

        const rows = await everyRow(s.store.db as never, e.name);
        const log = logs.join('');
        expect(log.length).toBeGreaterThan(1000);
        for (const secret of secrets) {
          // keys: also their unshown tail (the 12-character prefix is public)
          expect(secret.length, 'every secret was issued').toBeGreaterThanOrEqual(8);
          const needles = secret.startsWith('brz_') ? [secret, secret.slice(12)] : [secret];
          for (const needle of needles) {
            expect(
              rows.includes(needle),
              `a secret (${secrets.indexOf(secret)}) in the ${e.name} database`,
            ).toBe(false);
            expect(log.includes(needle), 'a secret in the log').toBe(false);
            for (const body of errors) expect(body.includes(needle), 'a secret in an error body').toBe(false);
          }
        }
        for (const value of notLogged) {
          expect(log.includes(value), 'the state in the log').toBe(false);
          for (const body of errors) expect(body.includes(value), 'the state in an error body').toBe(false);
        }
        // sanity: the scan reads real rows (public prefixes and emails are stored)
        expect(rows).toContain(admin.slice(0, 12));
        expect(rows).toContain('leak@example.com');
      } finally {
        await s.close();
        await issuer.close();
      }
    });
  });
}
