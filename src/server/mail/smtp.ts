import nodemailer, { type Transporter } from 'nodemailer';
import type { Mailer, MailMessage } from './mailer.js';

/**
 * SMTP through nodemailer. The URL carries everything: `smtp://user:pass@host:587` (STARTTLS when the
 * server offers it), `smtps://host:465` (implicit TLS); query options: `from=` the sender address,
 * `requireTLS=true`, `tls.rejectUnauthorized=false` for a self-signed test server.
 */
export class SmtpMailer implements Mailer {
  private readonly transport: Transporter;
  private readonly from: string;

  constructor(url: string) {
    const parsed = new URL(url);
    this.from = parsed.searchParams.get('from') ?? `Breeze <no-reply@${parsed.hostname}>`;
    parsed.searchParams.delete('from');
    this.transport = nodemailer.createTransport(parsed.toString());
  }

  async send(m: MailMessage): Promise<void> {
    await this.transport.sendMail({
      from: this.from,
      to: m.to,
      subject: m.subject,
      text: m.text,
      html: m.html,
    });
  }

  async close(): Promise<void> {
    this.transport.close();
  }
}
