import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

export interface ReceivedMail {
  envelopeFrom: string;
  envelopeTo: string[];
  /** the user that authenticated, if any */
  user: string | null;
  /** whether the session ran over TLS (implicit or STARTTLS) */
  secure: boolean;
  from: string;
  subject: string;
  /** the decoded text/plain body */
  text: string;
  raw: string;
}

export interface TestSmtpServer {
  /** `smtp://127.0.0.1:<port>` (or smtps://), with credentials when the server requires them */
  url: string;
  port: number;
  mails: ReceivedMail[];
  /** Resolves with the first mail (already received or still to come) that matches. */
  waitForMail(match?: (m: ReceivedMail) => boolean, timeoutMs?: number): Promise<ReceivedMail>;
  close(): Promise<void>;
}

export interface TestSmtpOptions {
  /** implicit TLS (smtps), with smtp-server's built-in self-signed certificate */
  secure?: boolean;
  /** offer STARTTLS (self-signed); off by default so plain smtp:// works without TLS options */
  starttls?: boolean;
  /** require AUTH PLAIN/LOGIN with these credentials */
  auth?: { user: string; pass: string };
  /** reject every recipient with a 550 */
  rejectRecipients?: boolean;
  /** answer each mail's DATA only after this long (a slow relay) */
  delayMs?: number;
}

function decodeWords(value: string): string {
  return value.replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_m, _charset, enc: string, text: string) =>
    enc.toUpperCase() === 'B'
      ? Buffer.from(text, 'base64').toString('utf8')
      : Buffer.from(
          text
            .replace(/_/g, ' ')
            .replace(/=([0-9A-F]{2})/gi, (_x, h: string) => String.fromCharCode(parseInt(h, 16))),
          'latin1',
        ).toString('utf8'),
  );
}

/** A deliberately small parser: enough for nodemailer's single-part text mails. */
export function parseMail(raw: string): { headers: Map<string, string>; text: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
  const headers = new Map<string, string>();
  for (const line of head.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers.set(line.slice(0, i).toLowerCase(), decodeWords(line.slice(i + 1).trim()));
  }
  let body = raw.slice(split + 4);
  const cte = (headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  if (cte === 'base64') body = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (cte === 'quoted-printable') {
    body = Buffer.from(
      body
        .replace(/=\r\n/g, '')
        .replace(/=([0-9A-F]{2})/gi, (_x, h: string) => String.fromCharCode(parseInt(h, 16))),
      'latin1',
    ).toString('utf8');
  }
  return { headers, text: body.replace(/\r\n/g, '\n') };
}

/** A real SMTP server in-process on 127.0.0.1 and an ephemeral port, keeping every mail it gets. */
export async function startSmtpServer(opts: TestSmtpOptions = {}): Promise<TestSmtpServer> {
  const mails: ReceivedMail[] = [];
  const waiters: Array<{ match: (m: ReceivedMail) => boolean; resolve: (m: ReceivedMail) => void }> = [];
  const options: SMTPServerOptions = {
    secure: opts.secure ?? false,
    disabledCommands: [...(opts.auth ? [] : ['AUTH']), ...(opts.starttls || opts.secure ? [] : ['STARTTLS'])],
    authOptional: !opts.auth,
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, cb) {
      if (opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass) {
        cb(null, { user: auth.username });
      } else {
        cb(new Error('Invalid username or password'));
      }
    },
    onRcptTo(_address, _session, cb) {
      if (opts.rejectRecipients) {
        const err = new Error('No such mailbox') as Error & { responseCode: number };
        err.responseCode = 550;
        cb(err);
        return;
      }
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const { headers, text } = parseMail(raw);
        const mail: ReceivedMail = {
          envelopeFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          envelopeTo: session.envelope.rcptTo.map((r) => r.address),
          user: (session.user as string | undefined) ?? null,
          secure: session.secure,
          from: headers.get('from') ?? '',
          subject: headers.get('subject') ?? '',
          text,
          raw,
        };
        setTimeout(() => {
          mails.push(mail);
          for (const w of [...waiters]) {
            if (w.match(mail)) {
              waiters.splice(waiters.indexOf(w), 1);
              w.resolve(mail);
            }
          }
          cb();
        }, opts.delayMs ?? 0);
      });
    },
  };
  const server = new SMTPServer(options);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  const creds = opts.auth
    ? `${encodeURIComponent(opts.auth.user)}:${encodeURIComponent(opts.auth.pass)}@`
    : '';
  const url = `${opts.secure ? 'smtps' : 'smtp'}://${creds}127.0.0.1:${port}`;
  return {
    url,
    port,
    mails,
    waitForMail(match = () => true, timeoutMs = 10_000) {
      const found = mails.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const waiter = {
          match,
          resolve: (m: ReceivedMail) => {
            clearTimeout(timer);
            resolve(m);
          },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`no matching mail within ${timeoutMs} ms (got ${mails.length})`));
        }, timeoutMs);
        waiters.push(waiter);
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The code in a Breeze code mail's subject (`Your Breeze code: <CODE>`). */
export function codeFromSubject(subject: string): string {
  const m = /^Your Breeze code: ([0-9A-Z]{8})$/.exec(subject);
  if (!m?.[1]) throw new Error(`not a Breeze code mail: ${JSON.stringify(subject)}`);
  return m[1];
}
