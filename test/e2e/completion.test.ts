/**
 * `breeze completion bash|zsh|fish` in the real shells (issue 10: the zsh script failed in zsh 5.9
 * with "unrecognized modifier 'C'", and without compinit with "compdef: command not found"; fish
 * re-offered every subcommand after `breeze keys rotate `). Scripts come from the spawned CLI; the
 * candidates asserted are what the shell would offer.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { requirePart } from '../helpers/require.js';

const SHELLS = { bash: '/usr/bin/bash', zsh: '/usr/bin/zsh', fish: '/usr/bin/fish' } as const;
let tmp: string;
const scripts: Record<string, string> = {};

const TOP = [
  'login',
  'logout',
  'status',
  'token',
  'env',
  'run',
  'keys',
  'orgs',
  'projects',
  'members',
  'invitations',
  'audit',
  'webhooks',
  'oidc',
  'scan',
  'link',
  'unlink',
  'doctor',
  'serve',
  'server',
  'completion',
  'help',
];
const KEYS = ['list', 'create', 'rotate', 'disable', 'enable', 'delete', 'usage', 'help'];

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'breeze-completion-'));
  for (const shell of ['bash', 'zsh', 'fish']) {
    const r = await runCli(['completion', shell], { configDir: join(tmp, 'config') });
    expect(r.code, r.stderr).toBe(0);
    scripts[shell] = join(tmp, `breeze.${shell}`);
    writeFileSync(scripts[shell]!, r.stdout);
  }
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** a clean environment for a shell: its own HOME (zsh writes .zcompdump there), no user config */
function shellEnv(): NodeJS.ProcessEnv {
  const home = mkdtempSync(join(tmp, 'home-'));
  return { PATH: process.env.PATH, HOME: home, TERM: 'xterm', LANG: 'C.UTF-8' };
}

describe.skipIf(requirePart('bash', existsSync(SHELLS.bash), `${SHELLS.bash} not found`))('bash', () => {
  /** candidates for a command line ending in `line` (the last word is the one being completed) */
  function complete(words: string[]): string[] {
    const script = `
source "$1"; shift
spec="$(complete -p breeze)"
fn="\${spec#*-F }"; fn="\${fn%% *}"
COMP_WORDS=("$@"); COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 ))
COMP_LINE="\${COMP_WORDS[*]}"; COMP_POINT=\${#COMP_LINE}
COMPREPLY=()
"$fn" breeze "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\\n' "\${COMPREPLY[@]}"`;
    const out = execFileSync(
      SHELLS.bash,
      ['--norc', '--noprofile', '-c', script, 'bash', scripts.bash!, ...words],
      {
        env: shellEnv(),
        encoding: 'utf8',
        timeout: 20_000,
      },
    );
    return out.split('\n').filter(Boolean);
  }

  it('registers a function with complete -F', () => {
    const out = execFileSync(
      SHELLS.bash,
      ['--norc', '--noprofile', '-c', 'source "$1" && complete -p breeze', 'bash', scripts.bash!],
      {
        env: shellEnv(),
        encoding: 'utf8',
      },
    );
    expect(out.trim()).toMatch(/^complete -F \S+ breeze$/);
  });

  it('offers the candidates of each position', () => {
    expect(complete(['breeze', ''])).toEqual(TOP);
    expect(complete(['breeze', 'k'])).toEqual(['keys']);
    expect(complete(['breeze', 'keys', ''])).toEqual(KEYS);
    expect(complete(['breeze', '--json', 'keys', 'r'])).toEqual(['rotate']);
    // after a subcommand without subcommands: its options, never the subcommands again
    const rotate = complete(['breeze', 'keys', 'rotate', '']);
    expect(rotate).toEqual(expect.arrayContaining(['--self', '--grace', '--save', '--json']));
    expect(rotate).not.toContain('rotate');
    expect(rotate).not.toContain('list');
    expect(complete(['breeze', 'keys', 'rotate', '--g'])).toEqual(['--grace']);
    expect(complete(['breeze', 'env', '--format', ''])).toEqual([
      'sh',
      'fish',
      'powershell',
      'dotenv',
      'json',
    ]);
    expect(complete(['breeze', 'env', '--format', 'd'])).toEqual(['dotenv']);
    // a free-text value gets nothing, not subcommands
    expect(complete(['breeze', 'keys', 'create', '--name', ''])).toEqual([]);
    // an option value is not taken for a command: "keys" is the profile's name here
    expect(complete(['breeze', '--profile', 'keys', ''])).toEqual(TOP);
    expect(complete(['breeze', 'keys', 'ls', '--a'])).toEqual(['--all']);
    expect(complete(['breeze', 'completion', ''])).toEqual(['bash', 'zsh', 'fish']);
    expect(complete(['breeze', 'help', 'k'])).toEqual(['keys']);
    expect(complete(['breeze', 'keys', 'help', 'c'])).toEqual(['create']);
  });
});

describe.skipIf(requirePart('zsh', existsSync(SHELLS.zsh), `${SHELLS.zsh} not found`))('zsh 5.9', () => {
  it('the documented eval works without compinit and with it, and registers _breeze', () => {
    for (const pre of ['', 'autoload -Uz compinit && compinit -i; ']) {
      const r = spawnSync(
        SHELLS.zsh,
        ['-f', '-c', `${pre}eval "$(cat "$1")"; print -r -- "comp=\${_comps[breeze]}"`, 'zsh', scripts.zsh!],
        { env: shellEnv(), encoding: 'utf8', timeout: 20_000 },
      );
      expect(r.stderr, pre).toBe('');
      expect(r.status, pre).toBe(0);
      expect(r.stdout.trim()).toBe('comp=_breeze');
    }
  });

  /** candidates the completion function hands to compadd (captured), in real zsh */
  function candidates(words: string[]): string[] {
    // a stub compdef: loading the whole completion system for each call is slow (tested above)
    const script = `
compdef() { :; }
eval "$(cat "$1")"; shift
compadd() { shift $(( \${@[(i)--]} )); print -rl -- "$@" }
words=("$@"); CURRENT=$#words
_breeze`;
    const out = execFileSync(SHELLS.zsh, ['-f', '-c', script, 'zsh', scripts.zsh!, ...words], {
      env: shellEnv(),
      encoding: 'utf8',
      timeout: 20_000,
    });
    return out.split('\n').filter(Boolean);
  }

  it('offers the candidates of each position', () => {
    expect(candidates(['breeze', ''])).toEqual(TOP);
    expect(candidates(['breeze', 'keys', ''])).toEqual(KEYS);
    const rotate = candidates(['breeze', 'keys', 'rotate', '']);
    expect(rotate).toEqual(expect.arrayContaining(['--self', '--grace', '--save']));
    expect(rotate).not.toContain('list');
    expect(candidates(['breeze', 'env', '--format', ''])).toEqual([
      'sh',
      'fish',
      'powershell',
      'dotenv',
      'json',
    ]);
    expect(candidates(['breeze', '--profile', 'keys', ''])).toEqual(TOP);
    expect(candidates(['breeze', 'completion', ''])).toEqual(['bash', 'zsh', 'fish']);
  });

  it('TAB completes in an interactive zsh (zpty), with and without compinit in .zshrc', () => {
    // a real line editor: type, press TAB, then ^T runs a widget that records the edited line
    const driver = `
zmodload zsh/zpty
out=$1; script=$2; pre=$3; shift 3
zpty z zsh -f -i
zpty -w z "PS1='%% '; $pre eval \\"\\$(cat $script)\\"; dump() { print -r -- \\"<\\$BUFFER>\\" >> $out; BUFFER=''; }; zle -N dump; bindkey '^T' dump; print READY"
zpty -r z chunk '*READY*'; zpty -r z chunk '*READY*'
n=0
for line in "$@"; do
  zpty -w -n z "$line"$'\\t'
  sleep 0.3
  zpty -w -n z $'\\x14'
  n=$((n + 1))
  for i in {1..100}; do [[ -f $out && $(wc -l < $out) -ge $n ]] && break; sleep 0.1; done
done
zpty -d z`;
    const lines = ['breeze keys ro', 'breeze env --format dot', 'breeze comp', 'breeze keys rotate --gr'];
    for (const pre of ['', 'autoload -Uz compinit; compinit -i;']) {
      const out = join(mkdtempSync(join(tmp, 'zpty-')), 'lines');
      spawnSync(SHELLS.zsh, ['-f', '-c', driver, 'zsh', out, scripts.zsh!, pre, ...lines], {
        env: shellEnv(),
        encoding: 'utf8',
        timeout: 60_000,
      });
      const got = existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter(Boolean) : [];
      expect(got, `pre: ${pre}`).toEqual([
        '<breeze keys rotate >',
        '<breeze env --format dotenv >',
        '<breeze completion >',
        '<breeze keys rotate --grace >',
      ]);
    }
  });
});

describe.skipIf(requirePart('fish', existsSync(SHELLS.fish), `${SHELLS.fish} not found`))('fish', () => {
  function complete(line: string): string[] {
    const out = execFileSync(
      SHELLS.fish,
      ['--no-config', '-c', 'source $argv[1]; complete -C"$argv[2]"', scripts.fish!, line],
      { env: shellEnv(), encoding: 'utf8', timeout: 20_000 },
    );
    return out
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t')[0]!);
  }

  it('offers the candidates of each position', () => {
    expect(complete('breeze ').sort()).toEqual([...TOP].sort());
    expect(complete('breeze keys ').sort()).toEqual([...KEYS].sort());
    const rotate = complete('breeze keys rotate ');
    expect(rotate).toEqual(expect.arrayContaining(['--self', '--grace', '--save']));
    for (const sub of [...TOP, ...KEYS]) expect(rotate).not.toContain(sub);
    expect(complete('breeze keys rotate --g')).toEqual(['--grace']);
    expect(complete('breeze env --format ').sort()).toEqual(['dotenv', 'fish', 'json', 'powershell', 'sh']);
    expect(complete('breeze keys create --name ')).toEqual([]);
    expect(complete('breeze --profile keys ').sort()).toEqual([...TOP].sort());
    expect(complete('breeze completion ').sort()).toEqual(['bash', 'fish', 'zsh']);
    expect(complete('breeze keys help c')).toEqual(['create']);
  });
});
