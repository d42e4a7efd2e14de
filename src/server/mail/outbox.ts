import { randomBytes } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Mailer, MailMessage } from './mailer.js';

function encodeHeader(value: string): string {
  // RFC 2047 for anything outside printable ASCII; header injection impossible either way
  const clean = value.replace(/[\r\n]+/g, ' ');
  return /^[\x20-\x7e]*$/.test(clean) ? clean : `=?UTF-8?B?${Buffer.from(clean).toString('base64')}?=`;
}

/**
 * The dev mailer used when no SMTP server is configured: each mail becomes an `.eml` file in
 * `<dataDir>/outbox/` (0600). `onMail` lets the CLI show the subject to the user when the server
 * runs inside a command.
 */
export class OutboxMailer implements Mailer {
  constructor(
    private readonly dir: string,
    private readonly from = 'Breeze <no-reply@breeze.localhost>',
    private readonly onMail?: (m: MailMessage) => void,
  ) {}

  async send(m: MailMessage): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const now = new Date();
    const name = `${now.toISOString().replace(/[:.]/g, '-')}-${randomBytes(4).toString('hex')}.eml`;
    const eml = [
      `From: ${encodeHeader(this.from)}`,
      `To: ${encodeHeader(m.to)}`,
      `Subject: ${encodeHeader(m.subject)}`,
      `Date: ${now.toUTCString()}`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      m.text,
      '',
    ].join('\r\n');
    const tmp = join(this.dir, `.${name}.tmp`);
    await writeFile(tmp, eml, { mode: 0o600 });
    await rename(tmp, join(this.dir, name));
    this.onMail?.(m);
  }
}
