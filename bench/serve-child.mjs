// Fallback server for the bench while `breeze serve` does not exist: the same startServer that
// `breeze serve` calls, with the per-key rate limit off. argv: <data dir> [database url]
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const [dataDir, databaseUrl] = process.argv.slice(2);
const dist = join(fileURLToPath(import.meta.url), '..', '..', 'dist');
const { startServer } = await import(pathToFileURL(join(dist, 'server', 'serve.js')).href);
const server = await startServer({
  host: '127.0.0.1',
  port: 0,
  dataDir,
  databaseUrl: databaseUrl || undefined,
  rateLimitPerKey: 0,
});
process.stderr.write(`listening on ${server.url}\n`);
const stop = () => {
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
