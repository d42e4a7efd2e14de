/** Which injected variables `run --mask` masks, and when masking is on by default. */

/** Injected variables that are not secret (shown as they are). Every other one is masked. */
const NOT_SECRET = new Set(['BREEZE_API_KEY_ID', 'BREEZE_SERVER']);

/** The secrets among the variables `run` injects: BREEZE_API_KEY and any other but the known public ones. */
export function secretsOf(vars: Record<string, string>): Array<{ name: string; value: string }> {
  return Object.entries(vars)
    .filter(([name]) => !NOT_SECRET.has(name))
    .map(([name, value]) => ({ name, value }));
}

/** Masking is on by default in CI (`CI` set, and not "false" or "0"). */
export function maskByDefault(env: NodeJS.ProcessEnv): boolean {
  const ci = env.CI?.trim().toLowerCase();
  return Boolean(ci) && ci !== 'false' && ci !== '0';
}
