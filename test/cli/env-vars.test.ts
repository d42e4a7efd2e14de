import { execFileSync } from 'node:child_process';
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
