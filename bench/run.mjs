#!/usr/bin/env node
// Entry of `npm run bench` (after `npm run build`): compiles the TypeScript bench (bench/**/*.ts and
// the test helpers it reuses) into .bench-build/, then runs it. Arguments pass through, e.g.
//   node bench/run.mjs --only sqlite,cli --quick
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, '.bench-build');
mkdirSync(out, { recursive: true });
// the build output ignores itself, whatever the repository's .gitignore says
writeFileSync(join(out, '.gitignore'), '*\n');

const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const res = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.bench.json')], {
  cwd: root,
  stdio: 'inherit',
});
if (res.status !== 0) {
  console.error('bench: compiling the TypeScript bench failed (see above)');
  process.exit(1);
}
await import(pathToFileURL(join(out, 'bench', 'main.js')).href);
