import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatEnv, quoteDotenv, quoteFish, quotePowerShell } from '../../src/cli/env-vars.js';

const NASTY = [
  `it's`,
  'two words',
  '$HOME and `id` and $(id)',
  `"double" 'single'`,
  'back\\slash',
  'new\nline',
  '!bang',
];

describe('env formats', () => {
  it('sh: bash evaluates every exported value back to the exact original', () => {
    for (const value of NASTY) {
      const text = formatEnv({ BREEZE_API_KEY: value }, 'sh');
      const out = execFileSync('bash', ['-c', `eval "$1"; printf %s "$BREEZE_API_KEY"`, '_', text], {
        encoding: 'utf8',
      });
      expect(out).toBe(value);
    }
  });

  it('sh, fish and dotenv: sourcing the output runs no command, whatever the value holds', () => {
    const dir = mkdtempSync(join(tmpdir(), 'breeze-env-quote-'));
    try {
      const evil = [
        "'`touch PWNED`'",
        '"$(touch PWNED)"',
        "x'\n`touch PWNED`",
        '\\`touch PWNED`',
        "'; touch PWNED; '",
      ];
      for (const value of evil) {
        const vars = { BREEZE_API_KEY: value };
        execFileSync('sh', ['-c', formatEnv(vars, 'dotenv')], { cwd: dir });
        execFileSync('bash', ['-c', `set -a; ${formatEnv(vars, 'dotenv')}`], { cwd: dir });
        execFileSync('bash', ['-c', `eval "$1"`, '_', formatEnv(vars, 'sh')], { cwd: dir });
        execFileSync('fish', ['-c', formatEnv(vars, 'fish')], { cwd: dir });
        expect(existsSync(join(dir, 'PWNED')), `${JSON.stringify(value)} ran a command`).toBe(false);
      }
      // fish reads its format back exactly
      for (const value of NASTY) {
        const out = execFileSync('fish', ['-c', `${formatEnv({ V: value }, 'fish')}; printf %s "$V"`], {
          encoding: 'utf8',
        });
        expect(out).toBe(value);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fish, powershell and dotenv quote quotes, backslashes and $ so nothing expands', () => {
    expect(quoteFish(`it's \\ $x`)).toBe(`'it\\'s \\\\ $x'`);
    expect(quotePowerShell(`it's $x`)).toBe(`'it''s $x'`);
    expect(quotePowerShell('a\u2019b')).toBe(`'a\u2019\u2019b'`);
    expect(quoteDotenv('plain $x')).toBe(`'plain $x'`);
    expect(quoteDotenv(`it's $x "q"`)).toBe(`"it's \\$x \\"q\\""`);
    expect(formatEnv({ A: '1', B: 'x' }, 'fish')).toBe(`set -gx A '1'\nset -gx B 'x'`);
    expect(formatEnv({ A: '1' }, 'powershell')).toBe(`$env:A = '1'`);
    expect(JSON.parse(formatEnv({ A: `"$'` }, 'json'))).toEqual({ A: `"$'` });
  });
});
