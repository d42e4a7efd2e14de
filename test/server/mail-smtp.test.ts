import { afterEach, describe, expect, it } from 'vitest';
import { parseSmtpUrl, SmtpMailer } from '../../src/server/mail/smtp.js';
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';

const message = {
  to: 'ada@example.com',
  subject: 'Your Breeze code: 09HD74KM',
  text: 'Your code is 09HD74KM',
};

describe('SmtpMailer against a real SMTP server', () => {
  let smtp: TestSmtpServer | undefined;
  let mailer: SmtpMailer | undefined;
  afterEach(async () => {
    await mailer?.close();
    await smtp?.close();
    mailer = undefined;
    smtp = undefined;
  });

  it('delivers subject, recipient, sender and text over plain smtp://', async () => {
    smtp = await startSmtpServer();
    mailer = new SmtpMailer(`${smtp.url}?from=${encodeURIComponent('Breeze <login@breeze.example>')}`);
    await mailer.send(message);
    const mail = await smtp.waitForMail();
    expect(mail.subject).toBe('Your Breeze code: 09HD74KM');
    expect(mail.envelopeTo).toEqual(['ada@example.com']);
    expect(mail.envelopeFrom).toBe('login@breeze.example');
    expect(mail.from).toBe('Breeze <login@breeze.example>');
    expect(mail.text).toContain('Your code is 09HD74KM');
    expect(mail.secure).toBe(false);
  });

  it('uses a valid default sender when the URL names none', async () => {
    smtp = await startSmtpServer();
    mailer = new SmtpMailer(smtp.url);
    await mailer.send(message);
    expect((await smtp.waitForMail()).envelopeFrom).toBe('no-reply@breeze.localhost');
  });

  it('authenticates with percent-encoded credentials that contain @ and :', async () => {
    smtp = await startSmtpServer({ auth: { user: 'mailer@corp', pass: 'p:ss@w/rd' } });
    expect(smtp.url).toContain('mailer%40corp:p%3Ass%40w%2Frd@');
    mailer = new SmtpMailer(smtp.url);
    await mailer.verify();
    await mailer.send(message);
    expect((await smtp.waitForMail()).user).toBe('mailer@corp');
  });

  it('fails on wrong credentials without putting the password in the error', async () => {
    smtp = await startSmtpServer({ auth: { user: 'mailer', pass: 'right-password' } });
    mailer = new SmtpMailer(`smtp://mailer:wrong-secret-pass@127.0.0.1:${smtp.port}`);
    const err = await mailer.send(message).then(
      () => null,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(String(err?.message)).not.toContain('wrong-secret-pass');
    expect(smtp.mails).toHaveLength(0);
  });

  it('upgrades with STARTTLS when required, and checks the certificate by default', async () => {
    smtp = await startSmtpServer({ starttls: true });
    // smtp-server's certificate is self-signed: refused unless the URL says otherwise
    mailer = new SmtpMailer(`${smtp.url}?requireTLS=true`);
    await expect(mailer.send(message)).rejects.toThrow(/certificate/i);
    await mailer.close();
    mailer = new SmtpMailer(`${smtp.url}?requireTLS=true&tls.rejectUnauthorized=false`);
    await mailer.send(message);
    expect((await smtp.waitForMail()).secure).toBe(true);
  });

  it('speaks implicit TLS with smtps://', async () => {
    smtp = await startSmtpServer({ secure: true });
    expect(smtp.url.startsWith('smtps://')).toBe(true);
    mailer = new SmtpMailer(`${smtp.url}?tls.rejectUnauthorized=false`);
    await mailer.send(message);
    expect((await smtp.waitForMail()).secure).toBe(true);
  });

  it('reports a rejected recipient', async () => {
    smtp = await startSmtpServer({ rejectRecipients: true });
    mailer = new SmtpMailer(smtp.url);
    await expect(mailer.send(message)).rejects.toThrow();
  });
});

describe('parseSmtpUrl', () => {
  it('maps scheme, port, credentials and options', () => {
    const { transport, from } = parseSmtpUrl(
      'smtps://u%40x:p%3Aw@mail.example.com?from=a%40b.c&pool=true&tls.servername=mx.example.com&connectionTimeout=500',
    );
    expect(transport).toMatchObject({
      host: 'mail.example.com',
      port: 465,
      secure: true,
      auth: { user: 'u@x', pass: 'p:w' },
      pool: true,
      tls: { servername: 'mx.example.com' },
      connectionTimeout: 500,
    });
    expect(from).toBe('a@b.c');
    expect(parseSmtpUrl('smtp://mail.example.com').transport).toMatchObject({ port: 587, secure: false });
    expect(parseSmtpUrl('smtp://[::1]:2525').transport).toMatchObject({ host: '::1', port: 2525 });
  });

  it('refuses other schemes and bad URLs without echoing a password', () => {
    expect(() => parseSmtpUrl('http://mail.example.com')).toThrow(/smtp: or smtps:/);
    expect(() => parseSmtpUrl('smtp://u:hunter2@[bad')).toThrow(/Invalid SMTP URL/);
    try {
      parseSmtpUrl('smtp://u:hunter2@[bad');
    } catch (e) {
      expect(String((e as Error).message)).not.toContain('hunter2');
    }
    expect(() => parseSmtpUrl('smtp://h?logger=true')).toThrow(/cannot be set/);
  });
});
