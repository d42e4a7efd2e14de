/**
 * Real parts (PostgreSQL, Chromium, the Secret Service...) may be missing on a developer's machine:
 * then a suite skips and says why. CI sets BREEZE_TEST_REQUIRE=1, which turns a missing part into a
 * failure, so nothing can skip silently there.
 *
 * Returns true when the suite should be skipped.
 */
export function requirePart(name: string, available: boolean, why: string): boolean {
  if (available) return false;
  if (process.env.BREEZE_TEST_REQUIRE === '1') {
    throw new Error(`${name} is required in this run (BREEZE_TEST_REQUIRE=1) but unavailable: ${why}`);
  }
  console.warn(`[skip] ${name} suite skipped: ${why}`);
  return true;
}
