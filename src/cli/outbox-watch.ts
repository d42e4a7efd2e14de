import { type FSWatcher, readdirSync, readFileSync, watch } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir } from '../credentials/atomic-file.js';

/**
 * The embedded server's dev mail goes to `.eml` files in `<data dir>/outbox/` (no SMTP). It runs in
 * the background, so the command that is running shows the mails written meanwhile (the code of
 * `breeze login --email`, or of the /login page during `breeze login`), as the in-process server
 * used to. The files are the user's own (0600 in a 0700 directory); nothing travels over HTTP.
 */
export interface OutboxWatch {
  /** resolves once a mail to `to` has been shown, or after `timeoutMs` */
  waitFor(to: string, timeoutMs: number): Promise<void>;
  close(): void;
}

interface Mail {
  to: string;
  subject: string;
}

function decodeHeader(value: string): string {
  return value.replace(/=\?UTF-8\?B\?([A-Za-z0-9+/=]*)\?=/gi, (_m, b64: string) =>
    Buffer.from(b64, 'base64').toString('utf8'),
  );
}

function parseMail(text: string): Mail | undefined {
  const head = text.split(/\r?\n\r?\n/, 1)[0] ?? '';
  const field = (name: string) => {
    const m = new RegExp(`^${name}: (.*)$`, 'mi').exec(head);
    return m ? decodeHeader(m[1]!.trim()) : undefined;
  };
  const to = field('To');
  const subject = field('Subject');
  return to !== undefined && subject !== undefined ? { to, subject } : undefined;
}

/** `2026-12-01T01-25-46-510Z-…eml` -> its time in ms (the outbox mailer names files so). */
function nameTime(name: string): number {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})-(\d{3})Z-/.exec(name);
  return m ? Date.parse(`${m[1]}T${m[2]}:${m[3]}:${m[4]}.${m[5]}Z`) : Number.NaN;
}

export function watchOutbox(dir: string, show: (m: Mail) => void): OutboxWatch {
  const since = Date.now() - 1000; // file names carry the server's clock (the same machine's)
  const seen = new Set<string>();
  const shown: string[] = [];
  const waiters = new Set<() => void>();
  const consider = (name: string) => {
    if (!name.endsWith('.eml') || name.startsWith('.') || seen.has(name)) return;
    if (!(nameTime(name) >= since)) return;
    let text: string;
    try {
      text = readFileSync(join(dir, name), 'utf8');
    } catch {
      return; // not there (yet, or any more)
    }
    seen.add(name);
    const mail = parseMail(text);
    if (!mail) return;
    show(mail);
    shown.push(mail.to.toLowerCase());
    for (const w of waiters) w();
  };
  const scan = () => {
    try {
      for (const name of readdirSync(dir)) consider(name);
    } catch {}
  };
  let watcher: FSWatcher | undefined;
  try {
    ensurePrivateDir(dir);
    watcher = watch(dir, (_event, name) => {
      if (name) consider(String(name));
    });
    watcher.on('error', () => {});
    watcher.unref();
  } catch {
    // no watch (unusual file system): waitFor still scans
  }
  return {
    waitFor(to, timeoutMs) {
      const want = to.toLowerCase();
      return new Promise((resolve) => {
        const done = () => {
          if (!shown.includes(want)) return;
          finish();
        };
        const finish = () => {
          waiters.delete(done);
          clearInterval(poll);
          clearTimeout(timer);
          resolve();
        };
        // a missed watch event (or none at all) is caught by scanning
        const poll = setInterval(scan, 100);
        const timer = setTimeout(finish, timeoutMs);
        waiters.add(done);
        scan();
        done();
      });
    },
    close() {
      watcher?.close();
    },
  };
}
