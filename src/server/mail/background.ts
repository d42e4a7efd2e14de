import type { FastifyInstance } from 'fastify';
import type { Mailer } from './mailer.js';

/**
 * Wraps `mailer` so that `send` returns at once and the mail goes out in the background. Routes that
 * mail a code to whatever address they are given (`POST /auth/code`, the `/login` page) use it so
 * that they answer in the same time whether or not a mail goes out (with `signup: closed` an unknown
 * email gets none), and so that an SMTP outage cannot turn into a 5xx that tells known and unknown
 * emails apart. Failures are logged without the message (it holds the code); mails still in flight
 * are awaited when the server closes.
 */
export function backgroundMailer(app: FastifyInstance, mailer: Mailer): Mailer {
  const pending = new Set<Promise<void>>();
  app.addHook('onClose', async () => {
    await Promise.allSettled([...pending]);
  });
  return {
    async send(message) {
      const p: Promise<void> = mailer
        .send(message)
        .catch((err: NodeJS.ErrnoException & { responseCode?: number }) => {
          // not `err` itself: nodemailer errors may carry the envelope; `code` is a redacted log key
          app.log.error(
            { mail_error: { message: err.message, errno: err.code, smtp_status: err.responseCode } },
            'could not send the code mail',
          );
        })
        .finally(() => pending.delete(p));
      pending.add(p);
    },
  };
}
