import { execFile } from 'node:child_process';
import { mkdir, readFile, realpath } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { writeFileAtomicSync } from '../../../credentials/atomic-file.js';
import { UsageError, UserError } from '../../errors.js';

const BEGIN = '# >>> breeze scan (added by "breeze scan --install-hook")';
const END = '# <<< breeze scan';

/** What the hook runs: the staged changes, offline, failing on any checksum-valid key. */
export const HOOK_ARGS = ['scan', '--staged', '--offline', '--any'];

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The hook's block: this very breeze (node + its bin script) when it is still there, else `breeze`
 * from PATH, so an upgrade or a moved checkout keeps working.
 */
export function hookBlock(node = process.execPath, script = process.argv[1] ?? ''): string {
  const args = HOOK_ARGS.join(' ');
  const lines = [
    BEGIN,
    '# Refuses a commit whose staged changes add a Breeze API key (checksum-valid, live or not).',
    '# Skip once with "git commit --no-verify".',
  ];
  if (script && isAbsolute(script)) {
    lines.push(
      `if [ -x ${shellQuote(node)} ] && [ -f ${shellQuote(script)} ]; then`,
      `  ${shellQuote(node)} ${shellQuote(script)} ${args} || exit 1`,
      'else',
      `  breeze ${args} || exit 1`,
      'fi',
    );
  } else {
    lines.push(`breeze ${args} || exit 1`);
  }
  lines.push(END);
  return `${lines.join('\n')}\n`;
}

function gitPath(cwd: string, what: string): Promise<string> {
  return new Promise((res, rej) => {
    execFile('git', ['rev-parse', '--git-path', what], { cwd, encoding: 'utf8' }, (err, stdout) => {
      if (err) {
        rej(
          new UsageError(`Not a git repository: ${cwd}.`, {
            hint: 'Run "breeze scan --install-hook" inside the repository (or pass its path).',
          }),
        );
      } else {
        const p = stdout.trim();
        res(isAbsolute(p) ? p : resolve(cwd, p));
      }
    });
  });
}

export type HookResult = { path: string; action: 'created' | 'chained' | 'present' };

/**
 * Installs the pre-commit hook of the repository at `cwd` (core.hooksPath respected). An existing
 * hook is never replaced: a shell script gets the block right after its `#!` line (it runs first and
 * stops the commit; the rest of the hook runs as before); any other hook is refused with the line to
 * add by hand. Installing twice changes nothing.
 */
export async function installHook(cwd: string): Promise<HookResult> {
  const path = join(await gitPath(cwd, 'hooks'), 'pre-commit');
  let existing: string | null = null;
  try {
    existing = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const block = hookBlock();
  // written whole (a temporary file renamed over it): a breeze killed or interrupted half-way
  // leaves the hook as it was or as it is meant to be, never cut short
  if (existing === null) {
    await mkdir(dirname(path), { recursive: true });
    writeFileAtomicSync(path, `#!/bin/sh\n${block}`, 0o755);
    return { path, action: 'created' };
  }
  if (existing.includes(BEGIN)) return { path, action: 'present' };
  const shebang = /^#!\s*(?:\/usr\/bin\/env\s+)?(?:\S*\/)?(sh|bash|zsh|dash|ksh)\b[^\n]*\n/.exec(existing);
  if (!shebang && existing.startsWith('#!')) {
    throw new UserError(`${path} exists and is not a shell script: it was left as it is.`, {
      hint: `Make it run "breeze ${HOOK_ARGS.join(' ')}" first and stop when that fails.`,
    });
  }
  const head = shebang ? shebang[0] : '#!/bin/sh\n';
  const body = shebang ? existing.slice(head.length) : existing;
  // a hook that is a symbolic link (hook managers link theirs) keeps its link: its target is rewritten
  writeFileAtomicSync(await realpath(path), `${head}${block}${body}`, 0o755);
  return { path, action: 'chained' };
}
