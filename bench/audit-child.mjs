// Bench only (issue 14): a server like `breeze serve` (dist's buildApp over a real store, per-key
// rate limit off, no request log) whose audit log is switched on and off while it runs — the
// test-only `AuditService.disabled`, which no server option exposes. Mints one admin key and prints
// it with the URL on stderr. argv: <data dir> <on|off> [database url]
// "audit on" / "audit off" on stdin switches the log and answers "ok" on stdout: the bench compares
// the two in one process, since two processes of the same server can differ by more than audit costs.
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { onCommands } from './child-commands.mjs';

const [dataDir, audit, databaseUrl] = process.argv.slice(2);
const dist = join(fileURLToPath(import.meta.url), '..', '..', 'dist');
const load = (p) => import(pathToFileURL(join(dist, ...p.split('/'))).href);
const { openStore } = await load('server/store/index.js');
const { buildApp } = await load('server/app.js');
const store = await openStore({ dataDir, databaseUrl: databaseUrl || undefined });
const app = await buildApp({
  store,
  mailer: { async send() {} },
  config: { pepper: Buffer.from('bench-pepper'), rateLimitPerKey: 0, publicUrl: 'http://127.0.0.1' },
  auditDisabled: audit === 'off',
});
const user = await store.users.ensure('audit-bench@example.com');
const { apiKey } = await app.breeze.keys.mint({
  userId: user.id,
  name: 'bench admin',
  scopes: ['read', 'write', 'admin'],
  expiresAt: null,
  createdVia: 'api',
});
const url = await app.listen({ host: '127.0.0.1', port: 0 });
process.stderr.write(`listening on ${url} key=${apiKey}\n`);
onCommands(
  /^audit (on|off)$/,
  (m) => {
    app.breeze.audit.disabled = m[1] === 'off';
  },
  () => stop(),
);
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  app
    .close()
    .then(() => store.close())
    .then(
      () => process.exit(0),
      () => process.exit(1),
    );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
