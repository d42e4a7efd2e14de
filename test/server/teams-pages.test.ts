import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliLoginExchangeResult } from '../../src/core/types.js';
import type { MailMessage } from '../../src/server/mail/mailer.js';
import { formFields, InjectBrowser } from '../helpers/browser.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Issue 12: CLI logins and email codes mint into the personal organization's `default` project;
 * the approve page offers a project picker when the approver has more than one project.
 */
describe('CLI login keys and the approve page project picker', () => {
  let server: TestServer;
  const mails: MailMessage[] = [];
  const lastCode = (email: string) => () =>
    [...mails]
      .reverse()
      .find((m) => m.to === email)
      ?.subject.replace('Your Breeze code: ', '');

  beforeAll(async () => {
    server = await startTestServer({
      mailer: {
        async send(m) {
          mails.push(m);
        },
      },
      config: { publicUrl: 'http://127.0.0.1:4455' },
    });
  });
  afterAll(async () => {
    await server.close();
  });

  async function newLogin() {
    const verifier = randomBytes(32).toString('base64url');
    const res = await server.app.inject({
      method: 'POST',
      url: '/v1/cli/logins',
      payload: {
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256',
        client_name: 'breeze/0.1.0',
        hostname: 'laptop',
      },
    });
    return { ...(res.json() as { login_id: string; user_code: string }), verifier };
  }

  async function exchange(login: { login_id: string; verifier: string }): Promise<CliLoginExchangeResult> {
    const res = await server.app.inject({
      method: 'POST',
      url: `/v1/cli/logins/${login.login_id}/exchange`,
      payload: { code_verifier: login.verifier },
    });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as CliLoginExchangeResult;
  }

  it('one project: no picker, the key lands in the personal default project', async () => {
    const email = 'solo-picker@example.com';
    const login = await newLogin();
    const b = new InjectBrowser(server.app);
    await b.signIn(email, lastCode(email));
    // device mode: the Approve form appears once the code is typed on the page
    const page = await b.typeCode(login.user_code);
    expect(page.statusCode).toBe(200);
    expect(page.body).not.toContain('<select');
    expect((await b.decide(login.user_code, 'approve')).statusCode).toBe(200);
    const { key, user } = await exchange(login);
    const personal = await server.store.orgs.personalOf(user.id);
    const def = await server.store.orgs.projectByName(personal?.id ?? '', 'default');
    expect(key).toMatchObject({ org_id: personal?.id, project_id: def?.id, created_by: user.id });
  });

  it('several projects: a picker of the approver own projects; the picked one gets the key; a foreign id is refused', async () => {
    const email = 'multi-picker@example.com';
    const user = await server.store.users.ensure(email);
    const { org } = await server.store.transaction((tx) => tx.orgs.create('Team <b>', user.id));
    const picked = await server.store.orgs.createProject(org.id, 'backend');
    const stranger = await server.store.users.ensure('stranger-picker@example.com');
    const foreign = await server.store.orgs.ensurePersonal(stranger);

    const login = await newLogin();
    const b = new InjectBrowser(server.app);
    await b.signIn(email, lastCode(email));
    // device mode: the Approve form appears once the code is typed on the page
    const page = await b.typeCode(login.user_code);
    expect(page.body).toContain('<select id="project_id" name="project_id">');
    expect(page.body).toContain(`<option value="${picked?.id}">Team &lt;b&gt; / backend</option>`);
    // the personal default comes first: the preselection when nothing is picked
    expect(page.body).toMatch(
      new RegExp(`<option value="proj_[0-9A-Z]+">${email}&#39;s organization / default`),
    );
    expect(page.body).not.toContain(foreign.project.id);

    const approve = formFields(page.body, '/device/approve');
    const forged = await b.post('/device/approve', { ...approve, project_id: foreign.project.id });
    expect(forged.statusCode).toBe(404);
    const ok = await b.post('/device/approve', { ...approve, project_id: picked?.id ?? '' });
    expect(ok.statusCode).toBe(200);
    const { key } = await exchange(login);
    expect(key).toMatchObject({ org_id: org.id, project_id: picked?.id, created_by: user.id });
  });

  it('an email-code key lands in the personal default project', async () => {
    const email = 'code-project@example.com';
    const start = await server.app.inject({
      method: 'POST',
      url: '/auth/code',
      payload: { email, type: 'api_key' },
    });
    const code = lastCode(email)();
    const res = await server.app.inject({
      method: 'POST',
      url: `/auth/code/${start.json().id}/verifications`,
      payload: { code },
    });
    const me = await server.app.inject({ url: '/v1/me', headers: { 'xi-api-key': res.json().secret } });
    expect(me.json()).toMatchObject({
      org: { name: `${email}'s organization`, role: 'owner' },
      project: { name: 'default' },
    });
  });
});
