import { existsSync, lstatSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { writeFileAtomicSync } from '../../credentials/atomic-file.js';
import { type CliContext, EMBEDDED, normaliseServer } from '../context.js';
import { UsageError } from '../errors.js';
import { isProjectRef, LINK_FILE } from '../link-file.js';
import type { CommandHost } from './host.js';

export interface LinkOptions {
  /** `--project <id|name>` */
  project?: string;
  /** the directory to link (default: the working directory) */
  dir?: string;
}

export interface LinkResult {
  path: string;
  profile: string;
  /** absent when no server was chosen (the profile's, once it has one, applies) */
  server?: string;
  project?: string;
}

/**
 * `breeze link`: writes `.breeze.json` in the directory with the profile and server in use (as given
 * by `--profile` / `--server`, or as resolved now) and `--project` when given. Never a secret: the
 * key stays in the keychain or credentials.json of the profile.
 */
export async function runLink(opts: LinkOptions, ctx: CliContext): Promise<LinkResult> {
  const dir = resolve(opts.dir ?? process.cwd());
  const path = join(dir, LINK_FILE);
  if (existsSync(path) && !lstatSync(path).isFile()) {
    throw new UsageError(`${path} exists and is not a regular file.`);
  }
  if (opts.project !== undefined && !isProjectRef(opts.project)) {
    throw new UsageError(`Invalid project "${opts.project}".`, {
      hint: 'Pass a project id (proj_…) or name.',
    });
  }
  // a server nobody chose (no flag, variable, link or saved profile: the `embedded` default) is not
  // pinned: `breeze link --profile work` before `breeze login --profile work --server ...` would
  // otherwise keep this directory on the embedded server, ahead of the profile's saved one
  const server = ctx.source('server') === 'default' ? undefined : normaliseServer(ctx.server());
  const project = opts.project ?? ctx.project();
  const result: LinkResult = {
    path,
    profile: ctx.profile,
    ...(server ? { server } : {}),
    ...(project ? { project } : {}),
  };
  const { path: _p, ...data } = result;
  // 0644: it is meant to be shared (committed or not), and holds nothing secret
  writeFileAtomicSync(path, `${JSON.stringify(data, null, 2)}\n`, 0o644);
  return result;
}

export function createCommand(host: CommandHost): Command {
  return new Command('link')
    .description('pin a profile, server and project to this directory tree (.breeze.json, no secret)')
    .addOption(new Option('--project <id|name>', 'the project commands below this directory use'))
    .addHelpText(
      'after',
      `
--profile and --server (global flags) name what to pin; without them, the ones in use now.
Commands run in this directory or below use them unless a flag or BREEZE_PROFILE / BREEZE_SERVER /
BREEZE_PROJECT says otherwise. "breeze status" shows where each value came from.

Examples:
  $ breeze link --profile work --server https://breeze.example.com
  $ breeze link --project billing
  $ breeze unlink`,
    )
    .action(async (o: { project?: string }, cmd: Command) => {
      const ctx = await host.context(cmd);
      const r = await runLink({ project: o.project }, ctx);
      if (ctx.json) ctx.out.json(r);
      else
        ctx.out.success(
          `Linked ${r.path}: profile "${r.profile}"${r.server ? `, server ${r.server === EMBEDDED ? 'embedded' : r.server}` : ''}${r.project ? `, project ${r.project}` : ''}.`,
        );
    });
}
