import { describe, expect, it } from 'vitest';
import { describeError, UserError } from '../../src/cli/errors.js';
import {
  boundLoginStart,
  clampExpiresIn,
  clampInterval,
  sameOriginUrl,
} from '../../src/cli/login/server-values.js';
import { createOutput } from '../../src/cli/ui/output.js';
import { renderTable } from '../../src/cli/ui/table.js';
import { clampText, terminalBlock, terminalJson, terminalLine } from '../../src/cli/ui/terminal-text.js';

const UNSAFE = /(?!\n)[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
const EVIL = 'a\x1b]0;t\x07b\x1b[2J\r\n✓ ok\u009b\u202e\u200b\ufeff\u2028\x7f\t\u{E0041}';

describe('terminal text', () => {
  it('terminalLine: one line, every control/format character shown as a visible escape', () => {
    const line = terminalLine(EVIL);
    expect(line).not.toMatch(UNSAFE);
    expect(line).not.toContain('\n');
    expect(line).toBe(
      'a\\x1B]0;t\\x07b\\x1B[2J\\r\\n✓ ok\\x9B\\u{202E}\\u{200B}\\u{FEFF}\\u{2028}\\x7F\\t\\u{E0041}',
    );
    // ordinary text, accents, emoji and CJK are left alone
    expect(terminalLine('Zoë 🔑 鍵 C:\\keys')).toBe('Zoë 🔑 鍵 C:\\keys');
  });

  it('terminalBlock keeps newlines only; terminalJson is the same JSON with nothing raw', () => {
    expect(terminalBlock('usage\n\x1b[2Jx\n')).toBe('usage\n\\x1B[2Jx\n');
    const value = { name: EVIL, list: [EVIL], n: 1 };
    const text = terminalJson(value);
    expect(text).not.toMatch(UNSAFE);
    expect(JSON.parse(text)).toEqual(value);
  });

  it('a table cell cannot start a row', () => {
    const lines = renderTable(['ID', 'NAME'], [['key_1', 'x\nkey_FAKE  y']]).map((l) => l.text);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe('key_1  x\\nkey_FAKE  y');
  });
});

describe('values too long to print whole', () => {
  const MB = 'N'.repeat(1 << 20);

  it('clampText cuts with an ellipsis, never in half a surrogate pair', () => {
    expect(clampText('short', 10)).toBe('short');
    expect(clampText('abcdefghij', 5)).toBe('abcd…');
    expect(clampText('abc🔑def', 5)).toBe('abc…');
  });

  it('a table cell of a megabyte is cut: the table stays about one screen wide', () => {
    const lines = renderTable(['ID', 'NAME', 'SCOPES'], [['k1', MB, MB]]);
    for (const l of lines) expect(l.text.length).toBeLessThan(1200);
    expect(lines[1]!.text).toContain('N…');
  });

  it('a message or an error holding a megabyte from a server is cut, not dumped on stderr', () => {
    let err = '';
    const out = createOutput({ stdout: { write: () => true }, stderr: { write: (t: string) => (err += t) } });
    out.success(`Created organization ${MB}.`);
    out.info(MB);
    out.warn(MB);
    expect(err.split('\n').filter(Boolean)).toHaveLength(3);
    expect(err.length).toBeLessThan(3 * 4200);
    expect(describeError(new UserError(`not delivered: ${MB}`, { hint: MB }), false)!.length).toBeLessThan(
      8400,
    );
  });
});

describe('login values from the server', () => {
  it('clamps interval to [1, 60] s and expires_in to [60, 600] s, nonsense included', () => {
    expect([3_000_000, 0, -5, 7, Number.NaN, Infinity].map(clampInterval)).toEqual([60, 1, 1, 7, 5, 5]);
    expect([23 * 86400, 0, 300, Number.NaN].map(clampExpiresIn)).toEqual([600, 60, 300, 600]);
  });

  it('opens only http(s) URLs on the server’s origin, without credentials', () => {
    const base = 'http://127.0.0.1:4455';
    expect(sameOriginUrl('http://127.0.0.1:4455/device?user_code=BCDF-GHJK', base)).toBe(
      'http://127.0.0.1:4455/device?user_code=BCDF-GHJK',
    );
    for (const bad of [
      'file:///etc/passwd',
      'javascript:alert(1)',
      'https://127.0.0.1:4455/device',
      'http://127.0.0.1:4456/device',
      'http://evil@127.0.0.1:4455/device',
      'http://localhost:4455/device',
      `http://127.0.0.1:4455/${'a'.repeat(3000)}`,
      'not a url',
    ])
      expect(sameOriginUrl(bad, base), bad).toBeNull();
    const warned: string[] = [];
    const start = boundLoginStart(
      {
        login_id: 'login_1',
        user_code: 'BCDF-GHJK',
        verification_uri: 'https://evil.example/device',
        verification_uri_complete: 'file:///x',
        expires_in: 1e9,
        interval: 1e9,
      },
      `${base}/`,
      (m) => warned.push(m),
    );
    expect(start).toMatchObject({
      verification_uri: `${base}/device`,
      verification_uri_complete: `${base}/device`,
      expires_in: 600,
      interval: 60,
    });
    expect(warned).toHaveLength(1);
  });
});
