#!/usr/bin/env node
// Part of `npm run build`, after tsc: bundles src/cli/bin.ts and what it imports statically into one
// CommonJS file, dist/cli/bin.cjs (see that module's comment). Dynamic imports stay imports of
// dist/'s ESM modules (same relative paths: the bundle sits in dist/cli/ like its entry), and
// packages stay external.
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const format = process.env.BREEZE_BUNDLE_FORMAT === 'esm' ? 'esm' : 'cjs';
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const versionModule = join(root, 'src/cli/version.ts');
await build({
  input: join(root, 'src/cli/bin.ts'),
  platform: 'node',
  logLevel: 'warn',
  // built-ins and packages: loaded by Node at run time
  external: (id) => id.startsWith('node:') || (!id.startsWith('.') && !id.startsWith('/')),
  plugins: [
    {
      name: 'inline-version',
      // `--version` and the resident server's version check: the version as a constant, so the fast
      // path reads no package.json (version.ts reads it at run time for the ESM build)
      load(id) {
        if (id !== versionModule) return null;
        return `export function cliVersion(): string {\n  return ${JSON.stringify(version ?? '0.0.0')};\n}\n`;
      },
    },
    {
      name: 'dynamic-imports-stay-esm',
      // import('./x.js') of a source module: the bundle imports dist/'s ESM build of it instead, so
      // what is loaded lazily stays lazy and the bundle holds only the fast path
      resolveId(source, importer, extra) {
        if (extra.kind !== 'dynamic-import' || !importer || !source.startsWith('.')) return null;
        const target = join(root, 'dist', relative(join(root, 'src'), resolve(dirname(importer), source)));
        let spec = relative(join(root, 'dist/cli'), target);
        if (!spec.startsWith('.')) spec = `./${spec}`;
        return { id: spec, external: true };
      },
    },
  ],
  output: {
    file: join(root, 'dist/cli', format === 'cjs' ? 'bin.cjs' : 'bin.mjs'),
    format,
    sourcemap: false,
  },
});
