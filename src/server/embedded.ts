import { join } from 'node:path';
import { ensurePrivateDir } from '../credentials/atomic-file.js';
import type { MailMessage } from './mail/mailer.js';
import { type RunningServer, startServer } from './serve.js';

/** The data directory of the embedded server: `<config dir>/server/` (what `breeze serve` uses too). */
export function embeddedDataDir(configDir: string): string {
  return join(configDir, 'server');
}

/**
 * Starts the packaged server in-process for the life of one CLI command: 127.0.0.1, an ephemeral
 * port, SQLite under `<config dir>/server/`, no logging; dev mail subjects go to `onMail`.
 */
export async function startEmbeddedServer(opts: {
  configDir: string;
  onMail?: (m: MailMessage) => void;
}): Promise<RunningServer> {
  const dataDir = embeddedDataDir(opts.configDir);
  ensurePrivateDir(dataDir);
  return startServer({
    host: '127.0.0.1',
    port: 0,
    dataDir,
    embedded: true,
    onMail: opts.onMail,
    logger: false,
  });
}
