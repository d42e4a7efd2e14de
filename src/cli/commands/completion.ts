import { Argument, Command, type Option } from 'commander';
import type { CommandHost } from './host.js';

/**
 * Shell completion, generated from the commander program itself so it never drifts from the real
 * commands, aliases, flags and choices. One algorithm, written once for POSIX-like shells (bash and
 * zsh share it) and once for fish: walk the words before the cursor (skipping option values and
 * stopping at `--`) to find the command path, then offer that command's subcommands, its options
 * (with the global ones), or the values of the option just typed.
 */

export type Shell = 'bash' | 'zsh' | 'fish';

interface OptionSpec {
  /** long and short spellings: `--format`, `-y` */
  names: string[];
  /** 'required': the next word is its value; 'optional': unless it starts with `-`; null: a flag */
  value: 'required' | 'optional' | null;
  /** values to offer; '::dirs' / '::files' ask the shell for directories / files */
  choices: string[];
  description: string;
}

interface NodeSpec {
  /** `''` for the root, else e.g. `keys rotate` */
  path: string;
  /** subcommand name or alias -> its path */
  steps: Array<[string, string]>;
  /** what to offer as subcommands (names, aliases, `help`) */
  subcommands: Array<[string, string]>;
  options: OptionSpec[];
  /** choices of the first positional argument (`completion bash|zsh|fish`, `help <command>`) */
  args: string[];
}

/** Everything completion needs, read from the program (root options are valid after any command). */
export interface CompletionModel {
  nodes: NodeSpec[];
  globals: OptionSpec[];
}

const WORD = /^[A-Za-z0-9_.:,/@+=-]+( [A-Za-z0-9_.:,/@+=-]+)*$/;

/** Names, paths (`keys rotate`) and choices are pasted into shell code: keep them boring. */
function safe(word: string): string {
  if (!WORD.test(word)) throw new Error(`completion: unexpected word ${JSON.stringify(word)}`);
  return word;
}

function optionSpec(o: Option): OptionSpec {
  const names = [o.long, o.short].filter((n): n is string => Boolean(n));
  const value = o.required ? 'required' : o.optional ? 'optional' : null;
  const placeholder = /<(\w+)>|\[(\w+)\]/.exec(o.flags);
  const kind = placeholder?.[1] ?? placeholder?.[2];
  const choices = o.argChoices ?? (kind === 'dir' ? ['::dirs'] : kind === 'file' ? ['::files'] : []);
  return { names, value, choices, description: o.description };
}

/** The completion model of `program` (a fully built `breeze` program with every command added). */
export function completionModel(program: Command): CompletionModel {
  const nodes: NodeSpec[] = [];
  const walk = (cmd: Command, path: string) => {
    const visible = cmd.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
    const steps: Array<[string, string]> = [];
    const subcommands: Array<[string, string]> = [];
    for (const sub of visible) {
      const subPath = path ? `${path} ${sub.name()}` : sub.name();
      for (const name of [sub.name(), ...sub.aliases()]) steps.push([name, subPath]);
      subcommands.push([sub.name(), sub.description()]);
    }
    if (visible.length > 0) {
      const helpPath = path ? `${path} help` : 'help';
      steps.push(['help', helpPath]);
      subcommands.push(['help', 'show help for a command']);
      nodes.push({
        path: helpPath,
        steps: [],
        subcommands: [],
        options: [],
        args: visible.map((c) => c.name()),
      });
    }
    nodes.push({
      path,
      steps,
      subcommands,
      options: path ? cmd.options.filter((o) => !o.hidden).map(optionSpec) : [],
      args: cmd.registeredArguments[0]?.argChoices ?? [],
    });
    for (const sub of visible) walk(sub, path ? `${path} ${sub.name()}` : sub.name());
  };
  walk(program, '');
  // --version is only valid before any command: offered at the root (below), not as a global
  const globals = program.options.filter((o) => !o.hidden && o.long !== '--version').map(optionSpec);
  globals.push({ names: ['--help', '-h'], value: null, choices: [], description: 'show help' });
  return { nodes, globals };
}

/** `case` arms for POSIX-like shells: `"path|word") body ;;` */
function arms(entries: Array<[string, string]>): string {
  return entries.map(([pattern, body]) => `    ${pattern}) ${body} ;;`).join('\n');
}

const lines = (words: string[]) => `printf '%s\\n' ${words.map(safe).join(' ')}`;

/** The functions bash and zsh share (plain `case`, `local`, `printf`; no arrays, no shell specials). */
function posixCore(m: CompletionModel): string {
  const stepArms: Array<[string, string]> = [];
  const valueArms: Array<[string, string]> = [];
  const choiceArms: Array<[string, string]> = [];
  const optionArms: Array<[string, string]> = [];
  const subArms: Array<[string, string]> = [];
  const argArms: Array<[string, string]> = [];
  const key = (path: string, word: string) => `"${safe(path || '_')}|${safe(word)}"`;
  for (const n of m.nodes) {
    for (const [word, to] of n.steps) stepArms.push([key(n.path, word), `__breeze_p="${safe(to)}"`]);
    for (const o of n.options) {
      for (const name of o.names) {
        if (o.value) valueArms.push([key(n.path, name), `__breeze_kind=${o.value}`]);
        if (o.choices.length) choiceArms.push([key(n.path, name), lines(o.choices)]);
      }
    }
    const longs = n.options.flatMap((o) => o.names.filter((x) => x.startsWith('--')));
    if (longs.length) optionArms.push([`"${safe(n.path || '_')}"`, lines(longs)]);
    if (n.subcommands.length)
      subArms.push([`"${safe(n.path || '_')}"`, lines(n.subcommands.map(([s]) => s))]);
    if (n.args.length) argArms.push([`"${safe(n.path || '_')}"`, lines(n.args)]);
  }
  for (const o of m.globals) {
    for (const name of o.names) {
      if (o.value) valueArms.push([`*"|${safe(name)}"`, `__breeze_kind=${o.value}`]);
      if (o.choices.length) choiceArms.push([`*"|${safe(name)}"`, lines(o.choices)]);
    }
  }
  const globalLongs = m.globals.flatMap((o) => o.names.filter((x) => x.startsWith('--')));
  return `# Candidates for the word being completed ($1), after the words between "breeze" and it ($2...),
# one per line; "::dirs" / "::files" ask the shell for directories / files.
__breeze_candidates() {
  local bz_cur="$1" bz_at="_" bz_w bz_opt="" bz_kind="" bz_npos=0 __breeze_p __breeze_kind
  shift
  while [ $# -gt 0 ]; do
    bz_w="$1"
    shift
    if [ -n "$bz_opt" ]; then
      bz_opt=""
      # the option's value (an optional value only when it does not look like an option)
      if [ "$bz_kind" = required ] || [ "\${bz_w#-}" = "$bz_w" ]; then continue; fi
    fi
    case "$bz_w" in
      --) return 0 ;;
      --*=*) ;;
      -*)
        __breeze_kind=""
        __breeze_value "$bz_at" "$bz_w"
        if [ -n "$__breeze_kind" ]; then bz_opt="$bz_w"; bz_kind="$__breeze_kind"; fi
        ;;
      *)
        if __breeze_step "$bz_at" "$bz_w"; then bz_at="$__breeze_p"; bz_npos=0; else bz_npos=$((bz_npos + 1)); fi
        ;;
    esac
  done
  if [ -n "$bz_opt" ] && { [ "$bz_kind" = required ] || [ "\${bz_cur#-}" = "$bz_cur" ]; }; then
    __breeze_choices "$bz_at" "$bz_opt"
    return 0
  fi
  case "$bz_cur" in
    -*) __breeze_options "$bz_at"; return 0 ;;
  esac
  local bz_out
  bz_out="$(__breeze_subs "$bz_at"; [ "$bz_npos" = 0 ] && __breeze_args "$bz_at")"
  if [ -n "$bz_out" ]; then printf '%s\\n' "$bz_out"; else __breeze_options "$bz_at"; fi
}
__breeze_step() {
  case "$1|$2" in
${arms(stepArms)}
    *) return 1 ;;
  esac
}
__breeze_value() {
  case "$1|$2" in
${arms(valueArms)}
  esac
}
__breeze_choices() {
  case "$1|$2" in
${arms(choiceArms)}
  esac
}
__breeze_options() {
  case "$1" in
${arms(optionArms)}
  esac
  ${lines(globalLongs)}
  [ "$1" = _ ] && printf '%s\\n' --version
  return 0
}
__breeze_subs() {
  case "$1" in
${arms(subArms)}
  esac
}
__breeze_args() {
  case "$1" in
${arms(argArms)}
  esac
}`;
}

function bashScript(m: CompletionModel): string {
  return `# breeze completion for bash: eval "$(breeze completion bash)"  (e.g. in ~/.bashrc)
${posixCore(m)}
_breeze() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" IFS=$'\\n'
  local -a cands
  cands=( $(__breeze_candidates "$cur" "\${COMP_WORDS[@]:1:$((COMP_CWORD - 1))}") )
  case "\${cands[0]}" in
    ::dirs) COMPREPLY=( $(compgen -d -- "$cur") ) ;;
    ::files) COMPREPLY=( $(compgen -f -- "$cur") ) ;;
    *) COMPREPLY=( $(compgen -W "\${cands[*]}" -- "$cur") ) ;;
  esac
}
complete -F _breeze breeze`;
}

function zshScript(m: CompletionModel): string {
  return `#compdef breeze
# breeze completion for zsh: eval "$(breeze completion zsh)" in ~/.zshrc (compinit is loaded if it
# is not yet), or save it as _breeze in a directory of $fpath.
${posixCore(m)}
_breeze() {
  local -a cands
  cands=( \${(f)"$(__breeze_candidates "\${words[CURRENT]}" "\${(@)words[2,CURRENT-1]}")"} )
  case "\${cands[1]}" in
    ::dirs) _files -/ ;;
    ::files) _files ;;
    *) compadd -- "\${(@)cands}" ;;
  esac
}
if [ "\${funcstack[1]}" = _breeze ]; then
  # autoloaded from $fpath by compinit: complete now
  _breeze "$@"
else
  # eval'd from ~/.zshrc: the completion system may not be loaded yet
  if (( ! \${+functions[compdef]} )); then
    autoload -Uz compinit && compinit -i
  fi
  compdef _breeze breeze
fi`;
}

/** fish single quotes */
function fishQuote(s: string): string {
  return `'${s.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

function fishScript(m: CompletionModel): string {
  const cases = (entries: Array<[string, string]>) =>
    entries.map(([pattern, body]) => `        case ${pattern}\n            ${body}`).join('\n');
  const key = (path: string, word: string) => fishQuote(`${path || '_'}|${safe(word)}`);
  const described = (items: Array<[string, string]>) =>
    `printf '%s\\t%s\\n' ${items.map(([w, d]) => `${safe(w)} ${fishQuote(d.split('\n')[0] ?? '')}`).join(' ')}`;
  const stepArms: Array<[string, string]> = [];
  const valueArms: Array<[string, string]> = [];
  const choiceArms: Array<[string, string]> = [];
  const optionArms: Array<[string, string]> = [];
  const subArms: Array<[string, string]> = [];
  const argArms: Array<[string, string]> = [];
  for (const n of m.nodes) {
    for (const [word, to] of n.steps) stepArms.push([key(n.path, word), `echo ${fishQuote(to)}`]);
    for (const o of n.options) {
      for (const name of o.names) {
        if (o.value) valueArms.push([key(n.path, name), `echo ${o.value}`]);
        if (o.choices.length)
          choiceArms.push([key(n.path, name), `printf '%s\\n' ${o.choices.map(safe).join(' ')}`]);
      }
    }
    const longs = n.options.flatMap((o) =>
      o.names.filter((x) => x.startsWith('--')).map((x): [string, string] => [x, o.description]),
    );
    if (longs.length) optionArms.push([fishQuote(n.path || '_'), described(longs)]);
    if (n.subcommands.length) subArms.push([fishQuote(n.path || '_'), described(n.subcommands)]);
    if (n.args.length)
      argArms.push([fishQuote(n.path || '_'), `printf '%s\\n' ${n.args.map(safe).join(' ')}`]);
  }
  for (const o of m.globals) {
    for (const name of o.names) {
      if (o.value) valueArms.push([fishQuote(`*|${safe(name)}`), `echo ${o.value}`]);
      if (o.choices.length)
        choiceArms.push([fishQuote(`*|${safe(name)}`), `printf '%s\\n' ${o.choices.map(safe).join(' ')}`]);
    }
  }
  const globalLongs = m.globals.flatMap((o) =>
    o.names.filter((x) => x.startsWith('--')).map((x): [string, string] => [x, o.description]),
  );
  return `# breeze completion for fish: breeze completion fish > ~/.config/fish/completions/breeze.fish
function __breeze_step
    switch "$argv[1]|$argv[2]"
${cases(stepArms)}
        case '*'
            return 1
    end
end
function __breeze_value
    switch "$argv[1]|$argv[2]"
${cases(valueArms)}
    end
end
function __breeze_choices
    switch "$argv[1]|$argv[2]"
${cases(choiceArms)}
    end
end
function __breeze_options
    switch "$argv[1]"
${cases(optionArms)}
    end
    ${described(globalLongs)}
    test "$argv[1]" = _; and printf '%s\\t%s\\n' --version 'print the version'
    return 0
end
function __breeze_subs
    switch "$argv[1]"
${cases(subArms)}
    end
end
function __breeze_args
    switch "$argv[1]"
${cases(argArms)}
    end
end
# Candidates for the token under the cursor, from the tokens before it (see the bash/zsh version).
function __breeze_candidates
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l cur (commandline -ct)
    set -l at _
    set -l opt ''
    set -l kind ''
    set -l npos 0
    for w in $tokens
        if test -n "$opt"
            set opt ''
            if test "$kind" = required; or not string match -q -- '-*' $w
                continue
            end
        end
        switch $w
            case --
                return 0
            case '--*=*'
            case '-*'
                set -l k (__breeze_value $at $w)
                if test -n "$k"
                    set opt $w
                    set kind $k
                end
            case '*'
                set -l next (__breeze_step $at $w)
                if test -n "$next"
                    set at $next
                    set npos 0
                else
                    set npos (math $npos + 1)
                end
        end
    end
    if test -n "$opt"; and begin; test "$kind" = required; or not string match -q -- '-*' $cur; end
        set -l values (__breeze_choices $at $opt)
        switch "$values[1]"
            case ::dirs
                __fish_complete_directories $cur
            case ::files
                __fish_complete_path $cur
            case '*'
                printf '%s\\n' $values
        end
        return 0
    end
    if string match -q -- '-*' $cur
        __breeze_options $at
        return 0
    end
    set -l out (__breeze_subs $at)
    test $npos -eq 0; and set -a out (__breeze_args $at)
    if test (count $out) -gt 0
        printf '%s\\n' $out
    else
        __breeze_options $at
    end
end
complete -c breeze -e
complete -c breeze -f -a '(__breeze_candidates)'`;
}

/** A completion script for `shell`, generated from `program`. */
export function completionScript(shell: Shell, program: Command): string {
  const model = completionModel(program);
  if (shell === 'fish') return fishScript(model);
  return shell === 'bash' ? bashScript(model) : zshScript(model);
}

export function createCommand(host: CommandHost): Command {
  return new Command('completion')
    .description('print a shell completion script')
    .addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh', 'fish']))
    .addHelpText(
      'after',
      `
Examples:
  $ echo 'eval "$(breeze completion bash)"' >> ~/.bashrc
  $ echo 'eval "$(breeze completion zsh)"' >> ~/.zshrc
  $ breeze completion fish > ~/.config/fish/completions/breeze.fish`,
    )
    .action(async (shell: Shell) => {
      // completion must know every command, not only this one
      process.stdout.write(`${completionScript(shell, await host.wholeProgram())}\n`);
    });
}
