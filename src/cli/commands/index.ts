import type { CommandModule } from './host.js';

/** Commands by name, each lazily imported: `breeze env` loads env.ts and nothing else. */
export const COMMANDS: Record<string, () => Promise<CommandModule>> = {
  login: () => import('./login.js'),
  logout: () => import('./logout.js'),
  status: () => import('./status.js'),
  token: () => import('./token.js'),
  env: () => import('./env.js'),
  run: () => import('./run.js'),
  keys: () => import('./keys/index.js'),
  orgs: () => import('./orgs/index.js'),
  projects: () => import('./projects/index.js'),
  members: () => import('./members/index.js'),
  invitations: () => import('./invitations/index.js'),
  audit: () => import('./audit.js'),
  webhooks: () => import('./webhooks/index.js'),
  oidc: () => import('./oidc/index.js'),
  scan: () => import('./scan/index.js'),
  link: () => import('./link.js'),
  unlink: () => import('./unlink.js'),
  doctor: () => import('./doctor.js'),
  serve: () => import('./serve.js'),
  server: () => import('./server.js'),
  completion: () => import('./completion.js'),
};

/** Aliases resolved before loading (`whoami` is `status`). */
export const ALIASES: Record<string, string> = { whoami: 'status' };

/** Global options that take a value; used to find the command name without loading commander. */
export const GLOBAL_VALUE_OPTIONS = new Set(['--server', '--profile', '--config-dir']);

/** The command name in argv (first operand outside global options), or undefined. */
export function findCommandName(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return undefined;
    if (GLOBAL_VALUE_OPTIONS.has(a)) {
      i++;
      continue;
    }
    if (a.startsWith('-')) continue;
    return ALIASES[a] ?? a;
  }
  return undefined;
}
