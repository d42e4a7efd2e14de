import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import type { Mailer, MailMessage } from './mailer.js';

export const DEFAULT_FROM = 'Breeze <no-reply@breeze.localhost>';

export interface SmtpMailerOptions {
  /** Sender when the URL has no `from=`; default `Breeze <no-reply@breeze.localhost>`. */
  from?: string;
}

/**
 * Turns an SMTP URL into nodemailer options. `smtp://` sends in clear text but upgrades with
 * STARTTLS when the server offers it (`requireTLS=true` makes the upgrade mandatory, `ignoreTLS=true`
 * never upgrades); `smtps://` is implicit TLS (port 465 by default). User and password are
 * percent-decoded (`smtp://me%40corp:p%3Ass@host:587`). Query parameters other than `from` go to
 * nodemailer as they are ("true"/"false" and numbers converted); `tls.<option>` sets a TLS option,
 * e.g. `tls.rejectUnauthorized=false` for a self-signed test server or `tls.servername=...`.
 */
export function parseSmtpUrl(url: string): { transport: SMTPTransport.Options; from: string | null } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // never echo the URL: it may carry a password
    throw new Error('Invalid SMTP URL: expected smtp://[user:pass@]host[:port] or smtps://...');
  }
  if (parsed.protocol !== 'smtp:' && parsed.protocol !== 'smtps:') {
    throw new Error(`Invalid SMTP URL: the scheme must be smtp: or smtps:, not ${parsed.protocol}`);
  }
  if (!parsed.hostname) throw new Error('Invalid SMTP URL: no host');
  const secure = parsed.protocol === 'smtps:';
  const transport: SMTPTransport.Options & Record<string, unknown> = {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port ? Number(parsed.port) : secure ? 465 : 587,
    secure,
    // nodemailer waits minutes by default; a mail that cannot be handed over in seconds has failed
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
    // nodemailer's own logger would print the message, which carries the code
    logger: false,
    debug: false,
  };
  if (parsed.username) {
    transport.auth = {
      user: decodeURIComponent(parsed.username),
      pass: decodeURIComponent(parsed.password),
    };
  }
  let from: string | null = null;
  for (const [key, raw] of parsed.searchParams) {
    if (key === 'from') {
      from = raw;
      continue;
    }
    const value: unknown =
      raw === 'true' ? true : raw === 'false' ? false : /^\d+$/.test(raw) ? Number(raw) : raw;
    if (key.startsWith('tls.')) {
      transport.tls = { ...(transport.tls ?? {}), [key.slice(4)]: value };
    } else if (key === 'logger' || key === 'debug' || key === 'auth' || key === 'tls') {
      throw new Error(`Invalid SMTP URL: option "${key}" cannot be set in the URL`);
    } else {
      transport[key] = value;
    }
  }
  return { transport, from };
}

/**
 * SMTP through nodemailer; the URL carries everything (see parseSmtpUrl), the sender included:
 * `smtp://user:pass@mail.example.com:587?from=Breeze%20%3Cno-reply%40example.com%3E`.
 */
export class SmtpMailer implements Mailer {
  private readonly transport: Transporter<SMTPTransport.SentMessageInfo>;
  readonly from: string;

  constructor(url: string, opts: SmtpMailerOptions = {}) {
    const { transport, from } = parseSmtpUrl(url);
    this.from = from ?? opts.from ?? DEFAULT_FROM;
    this.transport = nodemailer.createTransport(transport);
  }

  /** Checks that the server is reachable and accepts our credentials (for a start-up warning). */
  async verify(): Promise<void> {
    await this.transport.verify();
  }

  async send(m: MailMessage): Promise<void> {
    await this.transport.sendMail({
      from: this.from,
      to: m.to,
      subject: m.subject,
      text: m.text,
      ...(m.html ? { html: m.html } : {}),
    });
  }

  async close(): Promise<void> {
    this.transport.close();
  }
}
