/**
 * `POST /login` must not tell known and unknown emails apart: not by status, not by body, not by
 * time, and not by a 500 when the SMTP server fails (issue 10, item 3). Real SMTP servers in-process:
 * a slow one and one that refuses every recipient.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SmtpMailer } from '../../src/server/mail/smtp.js';
import { hiddenField, InjectBrowser } from '../helpers/browser.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';

const KNOWN = 'known@example.com';
const UNKNOWN = 'stranger@example.com';
const SMTP_DELAY_MS = 3000;

/** What a person would see, without the per-request random values (form token, code id). */
function normalised(body: string): string {
  return body
    .replace(/name="csrf" value="[^"]*"/g, 'name="csrf" value=""')
    .replace(/name="code_id" value="[^"]*"/g, 'name="code_id" value=""')
    .replaceAll(KNOWN, '<email>')
    .replaceAll(UNKNOWN, '<email>');
}

async function postLogin(s: TestServer, email: string) {
  const b = new InjectBrowser(s.app);
  const page = await b.get('/login');
  const t0 = performance.now();
  const res = await b.post('/login', { email, csrf: hiddenField(page.body, 'csrf'), next: '/device' });
  return { ms: performance.now() - t0, status: res.statusCode, body: normalised(res.body) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

describe('POST /login answers known and unknown emails alike (signup closed)', () => {
  let smtp: TestSmtpServer | undefined;
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    await smtp?.close();
    server = undefined;
    smtp = undefined;
  });

  async function serverWith(smtpServer: TestSmtpServer): Promise<TestServer> {
    const s = await startTestServer({
      mailer: new SmtpMailer(smtpServer.url),
      config: { publicUrl: 'http://127.0.0.1:4455', signup: 'closed' },
    });
    await s.store.users.ensure(KNOWN);
    return s;
  }

  it('with a slow SMTP server: same status, same page, same speed; the known address still gets its code', async () => {
    smtp = await startSmtpServer({ delayMs: SMTP_DELAY_MS });
    server = await serverWith(smtp);
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 5; i++) {
      const k = await postLogin(server, KNOWN);
      const u = await postLogin(server, UNKNOWN);
      expect(k.status).toBe(200);
      expect(u.status).toBe(200);
      expect(k.body).toBe(u.body);
      known.push(k.ms);
      unknown.push(u.ms);
    }
    const line = `known ${known.map(Math.round).join('/')} ms, unknown ${unknown.map(Math.round).join('/')} ms (SMTP answers after ${SMTP_DELAY_MS} ms)`;
    console.log(`[timing] POST /login: ${line}`);
    // neither waits for the mail, so both are far below the relay's delay and close to each other
    // (bounds leave room for a loaded machine; waiting for the relay would cost 3000 ms)
    expect(Math.max(...known), line).toBeLessThan(SMTP_DELAY_MS / 3);
    expect(Math.abs(median(known) - median(unknown)), line).toBeLessThan(250);
    // the mail still goes out (in the background), to the known address only
    const mail = await smtp.waitForMail((m) => m.envelopeTo.includes(KNOWN), 10_000);
    expect(mail.subject).toMatch(/^Your Breeze code: [0-9A-Z]{8}$/);
    expect(smtp.mails.some((m) => m.envelopeTo.includes(UNKNOWN))).toBe(false);
  });

  it('with an SMTP server that refuses the mail: 200 and the same page for both, never a 500', async () => {
    smtp = await startSmtpServer({ rejectRecipients: true });
    server = await serverWith(smtp);
    const k = await postLogin(server, KNOWN);
    const u = await postLogin(server, UNKNOWN);
    expect(k.status).toBe(200);
    expect(u.status).toBe(200);
    expect(k.body).toBe(u.body);
    expect(k.body).toContain('Check your email');
  });
});
