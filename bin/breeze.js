#!/usr/bin/env node
// CommonJS (see bin/package.json): no ESM loader before the fast path of dist/cli/bin.cjs, a single
// bundled file (src/cli/bin.ts). Everything else it hands to dist/cli/main.cjs (the full program, also
// bundled: scripts/bundle.mjs).
require('../dist/cli/bin.cjs').run(process.argv.slice(2));
