// Server for the bench's `verify-api` section: dist's startServer (what `breeze serve` runs) with
// the config switches `breeze serve` has no flag for, plus a few keys minted through its own
// KeyService. argv: <data dir> <countUsage: 1|0> <rate limit per key> <cold keys>
// Prints one JSON line on stdout: {"url","verifier","target","cold":[...]}; then see "count" below.
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { onCommands } from './child-commands.mjs';

const [dataDir, countUsage, rateLimit, coldCount] = process.argv.slice(2);
const dist = join(fileURLToPath(import.meta.url), '..', '..', 'dist');
const { startServer } = await import(pathToFileURL(join(dist, 'server', 'serve.js')).href);
const server = await startServer({
  host: '127.0.0.1',
  port: 0,
  dataDir,
  rateLimitPerKey: Number(rateLimit),
  config: { countUsage: countUsage === '1' },
});
const { store, breeze } = { store: server.store, breeze: server.app.breeze };
const user = await store.users.ensure('bench-verify@example.com');
const mint = async (scopes) =>
  (await breeze.keys.mint({ userId: user.id, name: 'bench', scopes, expiresAt: null, createdVia: 'api' }))
    .apiKey;
const verifier = await mint(['read', 'verify']);
const target = await mint(['read', 'write']);
const cold = [];
for (let i = 0; i < Number(coldCount); i++) cold.push(await mint(['read']));
process.stdout.write(`${JSON.stringify({ url: server.url, verifier, target, cold })}\n`);
// "count 1" / "count 0" on stdin switches this running server's usage counting (UsageTracker's
// `count` option) and answers "ok": the bench compares counting on and off in one process, since
// two processes of the same server can differ by more than counting costs.
onCommands(
  /^count ([01])$/,
  (m) => {
    breeze.usage.opts.count = m[1] === '1';
  },
  () => stop(),
);
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
