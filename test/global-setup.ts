import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { stopStrayResidentServers } from './resident-teardown.js';

/**
 * End-to-end tests spawn bin/breeze.js, which runs dist/: build it once if it is missing or stale.
 * The build is tsc, then the bundle of the CLI's fast entry (dist/cli/bin.cjs, written last).
 */
export default function setup(): () => void {
  // after the run: no resident embedded server started by a test outlives the suite
  const teardown = () => {
    stopStrayResidentServers();
  };
  const out = 'dist/cli/bin.cjs';
  if (process.env.BREEZE_SKIP_BUILD === '1') return teardown;
  if (existsSync('src/cli/main.ts') && (!existsSync(out) || statSync(out).mtimeMs < newestSource())) {
    try {
      execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
      execFileSync(process.execPath, ['scripts/bundle.mjs'], { stdio: 'inherit' });
    } catch {
      // in-process suites do not need dist/; the end-to-end ones fail on their own with a clear error
      console.warn(
        '[global-setup] build of dist/ failed: end-to-end tests will run against a stale or missing build',
      );
    }
  }
  // the @breeze/verify workspace: the example (examples/voices-api) and the bench import its dist/
  const sdkOut = 'packages/verify/dist/index.js';
  if (
    existsSync('packages/verify/src/index.ts') &&
    (!existsSync(sdkOut) || statSync(sdkOut).mtimeMs < newestSource('packages/verify/src'))
  ) {
    try {
      execFileSync('npx', ['tsc', '-p', 'packages/verify/tsconfig.build.json'], { stdio: 'inherit' });
    } catch {
      console.warn('[global-setup] build of packages/verify/dist failed: the example tests will fail');
    }
  }
  return teardown;
}

function newestSource(dir = 'src'): number {
  const out = execFileSync('git', ['ls-files', '-com', '--exclude-standard', dir], { encoding: 'utf8' });
  let newest = 0;
  for (const f of out.split('\n')) {
    if (!f || !existsSync(f)) continue;
    newest = Math.max(newest, statSync(f).mtimeMs);
  }
  return newest;
}
