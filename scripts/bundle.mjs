#!/usr/bin/env node
// Part of `npm run build`, after tsc: bundles the CLI into CommonJS files in dist/cli/, so that no
// command goes through the ESM loader (resolving, linking and translating some 30 modules cost the
// embedded commands tens of milliseconds). Two builds:
// - dist/cli/bin.cjs: src/cli/bin.ts and what it imports statically, in one file: the fast path of
//   `breeze token`, `breeze env` and `--version` (see bin.ts's comment). Its `import('./main.js')`
//   becomes a require of the second build.
// - dist/cli/main.cjs: the full program (src/cli/main.ts); each dynamic import (program.ts, each
//   command, the client, ...) becomes a chunk next to it (`main-*.cjs`) loaded on use, so what is
//   lazy stays lazy. Every chunk sits in dist/cli/ like the modules of src/cli/ it holds, so
//   `import.meta.url`-relative paths (../../bin/breeze.js, ../../package.json) stay right.
// Packages and built-ins stay external (ESM-only packages keep their `import()`); so does the
// server (src/server/**): `breeze serve` and the resident server import dist/server's ESM modules.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
const outDir = join(root, 'dist/cli');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

/** The specifier of `file` (absolute) as imported from a file in dist/cli/. */
function fromOutDir(file) {
  const spec = relative(outDir, file);
  return spec.startsWith('.') ? spec : `./${spec}`;
}

const shared = {
  platform: 'node',
  logLevel: 'warn',
  onLog(level, log, handler) {
    // scan/rules.ts is imported statically and dynamically by scan/index.ts: nothing to split there
    if (log.code === 'INEFFECTIVE_DYNAMIC_IMPORT') return;
    handler(level, log);
  },
  // built-ins and packages: loaded by Node at run time
  external: (id) => id.startsWith('node:') || (!id.startsWith('.') && !id.startsWith('/')),
};

const inlineVersion = {
  name: 'inline-version',
  // `--version` and the resident server's version check: the version as a constant, so no command
  // reads package.json (version.ts reads it at run time in the ESM build)
  load(id) {
    if (id !== join(src, 'cli/version.ts')) return null;
    return `export function cliVersion(): string {\n  return ${JSON.stringify(version ?? '0.0.0')};\n}\n`;
  },
};

/** Dynamic imports of `dir`'s modules stay imports of their ESM build in dist/. */
function dynamicImportsStayEsm(dir) {
  return {
    name: 'dynamic-imports-stay-esm',
    resolveId(source, importer, extra) {
      if (extra.kind !== 'dynamic-import' || !importer || !source.startsWith('.')) return null;
      const abs = resolve(dirname(importer), source);
      if (!abs.startsWith(`${dir}/`)) return null;
      return { id: fromOutDir(join(root, 'dist', relative(src, abs))), external: true };
    },
  };
}

// chunks of an earlier build (their names carry content hashes)
for (const f of readdirSync(outDir)) {
  if (f.endsWith('.cjs') && (f === 'bin.cjs' || f.startsWith('main'))) rmSync(join(outDir, f));
}

// the full program first: bin.cjs, written last, is what the tests' global setup checks for staleness
await build({
  ...shared,
  // commander too, bundled into the chunk of program.ts: requiring the package cost more than
  // loading it (resolving its `exports` map, then six files)
  external: (id) => id !== 'commander' && shared.external(id),
  input: { main: join(src, 'cli/main.ts') },
  plugins: [inlineVersion, dynamicImportsStayEsm(join(src, 'server'))],
  output: {
    dir: outDir,
    format: 'cjs',
    entryFileNames: '[name].cjs',
    chunkFileNames: 'main-[name]-[hash].cjs',
    sourcemap: false,
  },
});

const MAIN = './main.cjs';
await build({
  ...shared,
  input: join(src, 'cli/bin.ts'),
  plugins: [
    inlineVersion,
    {
      name: 'full-program-is-main-cjs',
      resolveId(source, importer, extra) {
        if (extra.kind !== 'dynamic-import' || !importer) return null;
        if (resolve(dirname(importer), source) !== join(src, 'cli/main.js')) return null;
        return { id: MAIN, external: true };
      },
      // require, not import(): import() of a CommonJS file would start the ESM loader
      renderChunk(code) {
        const call = `import(${JSON.stringify(MAIN)})`;
        if (!code.includes(call)) throw new Error(`bundle: ${call} not found in bin.cjs`);
        return code.replace(call, `Promise.resolve().then(() => require(${JSON.stringify(MAIN)}))`);
      },
    },
    dynamicImportsStayEsm(src),
  ],
  output: { file: join(outDir, 'bin.cjs'), format: 'cjs', sourcemap: false },
});
