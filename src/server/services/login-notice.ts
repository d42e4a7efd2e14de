import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.js';
import { backgroundMailer } from '../mail/background.js';
import type { Mailer, MailMessage } from '../mail/mailer.js';
import { displayIp } from '../pages/ip.js';
import type { KeyRow } from '../store/keys.js';

/** What a new-login notice names (never a secret: the key by name, prefix and id only). */
export interface LoginNotice {
  user: { id: string; email: string };
  key: Pick<KeyRow, 'id' | 'name' | 'prefix'>;
  /** the hostname the CLI reported; null when the flow carries none */
  hostname: string | null;
  ip: string | null;
  userAgent: string | null;
  at: Date;
  method: 'browser' | 'device' | 'email_code';
}

const METHODS: Record<LoginNotice['method'], string> = {
  browser: 'breeze login (approved in a browser)',
  device: 'breeze login (device code approved in a browser)',
  email_code: 'breeze login --email (one-time code from an email)',
};

/** One line of plain text: no control characters, bounded. */
function line(value: string, max = 200): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
  const clean = value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ').trim();
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

/** The notice mail (exported for tests). */
export function loginNoticeMail(n: LoginNotice, publicUrl: string): MailMessage {
  const host = n.hostname ? line(n.hostname, 100) : null;
  const base = publicUrl.replace(/\/+$/, '');
  const text = [
    `A new API key was just created for ${n.user.email} by a Breeze CLI login.`,
    '',
    `  Host:    ${host ?? 'not reported by the client'}`,
    `  IP:      ${n.ip ? displayIp(n.ip) : 'unknown'}`,
    `  Time:    ${n.at.toISOString()}`,
    `  Key:     ${line(n.key.name)} (${n.key.prefix}…, id ${n.key.id})`,
    `  Method:  ${METHODS[n.method]}`,
    ...(n.userAgent ? [`  Client:  ${line(n.userAgent, 120)}`] : []),
    '',
    'If this was you, there is nothing to do.',
    '',
    'If it was not you, revoke the key now:',
    `    breeze keys disable ${n.key.id}`,
    `or, with any other credential of yours: POST ${base}/v1/api-keys/${n.key.id}/disable`,
    `and sign in at ${base}/login to check your other keys.`,
  ].join('\n');
  return {
    to: n.user.email,
    subject: `New Breeze login${host ? ` from ${line(host, 60)}` : ''}`,
    text,
  };
}

/**
 * Mails a notice when a login mints a key: in the background (backgroundMailer), so it never
 * delays or fails the login. The embedded server sends none: its only user is the person at the
 * terminal that just logged in.
 */
export class LoginNotices {
  private readonly mailer: Mailer | null;

  constructor(
    app: FastifyInstance,
    private readonly ctx: ServerContext,
  ) {
    this.mailer = ctx.config.embedded ? null : backgroundMailer(app, ctx.mailer);
  }

  send(notice: LoginNotice): void {
    if (!this.mailer) return;
    // backgroundMailer never rejects; guard anyway: a notice must never fail a login
    this.mailer.send(loginNoticeMail(notice, this.ctx.config.publicUrl)).catch(() => {});
  }
}
