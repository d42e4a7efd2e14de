import { Argument, Command } from 'commander';
import type { CommandHost } from './index.js';

const COMMANDS = [
  'login',
  'logout',
  'status',
  'whoami',
  'token',
  'env',
  'run',
  'keys',
  'serve',
  'completion',
  'help',
];
const KEYS = ['list', 'create', 'rotate', 'disable', 'enable', 'delete'];
const GLOBAL = [
  '--server',
  '--profile',
  '--json',
  '--config-dir',
  '--no-color',
  '--verbose',
  '--help',
  '--version',
];
const OPTIONS: Record<string, string[]> = {
  login: ['--no-browser', '--email', '--code', '--with-key', '--name', '--scopes', '--storage'],
  logout: ['--keep-key'],
  env: ['--format'],
  serve: [
    '--host',
    '--port',
    '--data-dir',
    '--database-url',
    '--smtp-url',
    '--public-url',
    '--signup',
    '--rate-limit-per-key',
    '--jwt-alg',
  ],
  'keys list': ['--all'],
  'keys create': ['--name', '--scopes', '--expires-in', '--save'],
  'keys rotate': ['--self', '--grace', '--save'],
  'keys delete': ['--yes'],
};

/** A completion script for `shell`. */
export function completionScript(shell: 'bash' | 'zsh' | 'fish'): string {
  if (shell === 'fish') {
    const lines = [
      '# breeze completion for fish: breeze completion fish > ~/.config/fish/completions/breeze.fish',
      'complete -c breeze -f',
    ];
    for (const c of COMMANDS) lines.push(`complete -c breeze -n '__fish_use_subcommand' -a ${c}`);
    for (const k of KEYS) lines.push(`complete -c breeze -n '__fish_seen_subcommand_from keys' -a ${k}`);
    for (const g of GLOBAL) lines.push(`complete -c breeze -l ${g.slice(2)}`);
    for (const [cmd, opts] of Object.entries(OPTIONS)) {
      const last = cmd.split(' ').pop();
      for (const o of opts)
        lines.push(`complete -c breeze -n '__fish_seen_subcommand_from ${last}' -l ${o.slice(2)}`);
    }
    lines.push(
      `complete -c breeze -n '__fish_seen_subcommand_from env' -l format -xa 'sh fish powershell dotenv json'`,
    );
    lines.push(`complete -c breeze -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'`);
    return lines.join('\n');
  }
  const cases = Object.entries(OPTIONS)
    .map(([cmd, opts]) => `    "${cmd}") opts="${opts.join(' ')}" ;;`)
    .join('\n');
  const bash = `_breeze_completions() {
  local cur words cmd sub
  cur="\${COMP_WORDS[COMP_CWORD]}"
  cmd=""; sub=""
  for w in "\${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    case "$w" in -*) ;; *) if [ -z "$cmd" ]; then cmd="$w"; elif [ -z "$sub" ]; then sub="$w"; fi ;; esac
  done
  local opts="${GLOBAL.join(' ')}"
  case "$cmd $sub" in
${cases.replace(/"(keys \w+)"\)/g, '"$1")')}
  esac
  case "$cmd" in
${Object.entries(OPTIONS)
  .filter(([c]) => !c.includes(' '))
  .map(([c, o]) => `    ${c}) opts="$opts ${o.join(' ')}" ;;`)
  .join('\n')}
  esac
  if [[ "$cur" == -* ]]; then COMPREPLY=( $(compgen -W "$opts ${GLOBAL.join(' ')}" -- "$cur") ); return; fi
  if [ -z "$cmd" ]; then COMPREPLY=( $(compgen -W "${COMMANDS.join(' ')}" -- "$cur") ); return; fi
  case "$cmd" in
    keys) [ -z "$sub" ] && COMPREPLY=( $(compgen -W "${KEYS.join(' ')}" -- "$cur") ) ;;
    completion) COMPREPLY=( $(compgen -W "bash zsh fish" -- "$cur") ) ;;
    env) [ "\${COMP_WORDS[COMP_CWORD-1]}" = "--format" ] && COMPREPLY=( $(compgen -W "sh fish powershell dotenv json" -- "$cur") ) ;;
  esac
}`;
  if (shell === 'bash')
    return `# breeze completion for bash: eval "$(breeze completion bash)"\n${bash}\ncomplete -F _breeze_completions breeze`;
  return `#compdef breeze\n# breeze completion for zsh: eval "$(breeze completion zsh)"\nautoload -U +X bashcompinit && bashcompinit\n${bash}\ncomplete -F _breeze_completions breeze`;
}

export function createCommand(_host: CommandHost): Command {
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
    .action((shell: 'bash' | 'zsh' | 'fish') => {
      process.stdout.write(`${completionScript(shell)}\n`);
    });
}
