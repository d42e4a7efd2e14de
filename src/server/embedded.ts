import { join } from 'node:path';

/**
 * The data directory of the embedded server: `<config dir>/server/` (what `breeze serve` uses too).
 * The embedded server itself runs resident in the background: src/server/resident.ts.
 */
export function embeddedDataDir(configDir: string): string {
  return join(configDir, 'server');
}
