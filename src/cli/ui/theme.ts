import { Chalk, type ChalkInstance } from 'chalk';

/**
 * Colours for stdout and stderr. NO_COLOR / --no-color (which sets FORCE_COLOR=0) turn them off,
 * FORCE_COLOR forces them; otherwise each stream's TTY decides, except on a `TERM=dumb` terminal,
 * which cannot draw them (supports-color, and so chalk, say the same).
 */
export function themeFor(stream: 'stdout' | 'stderr', env: NodeJS.ProcessEnv = process.env): ChalkInstance {
  return new Chalk({ level: colourLevel(stream, env) });
}

export function colourLevel(
  stream: 'stdout' | 'stderr',
  env: NodeJS.ProcessEnv = process.env,
): 0 | 1 | 2 | 3 {
  if (env.NO_COLOR) return 0;
  if (env.FORCE_COLOR !== undefined) {
    // as supports-color (chalk) reads it: "false" turns colours off, "", "true" or junk means level 1
    if (env.FORCE_COLOR === 'false') return 0;
    const n = env.FORCE_COLOR === '' || env.FORCE_COLOR === 'true' ? 1 : Number(env.FORCE_COLOR);
    return (Number.isFinite(n) ? Math.max(0, Math.min(3, n)) : 1) as 0 | 1 | 2 | 3;
  }
  if (env.TERM === 'dumb') return 0;
  return process[stream].isTTY ? 1 : 0;
}
