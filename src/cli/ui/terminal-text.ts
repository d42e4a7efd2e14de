/**
 * The one gate between text and a terminal. Anything the CLI prints for people may hold values from
 * outside (a server's key names, emails and error messages, environment variables, file contents);
 * a control character in them would be obeyed by the terminal: `ESC ]0;…BEL` retitles the window,
 * `ESC [2J` clears it, OSC 8 hides a link behind text, CR or a newline fakes a line such as
 * "✓ Logged in". So every line goes through `terminalLine`, which shows such characters as visible
 * escapes instead. No dependencies: `token`, `env` and the error path load this too.
 */

/**
 * Characters a terminal may act on or that change how the surrounding text reads: C0 controls
 * (TAB, CR and LF included), DEL, C1 controls (\p{Cc}); format characters (\p{Cf}: bidi overrides
 * and isolates, zero-width spaces and joiners, the BOM, soft hyphen, tag characters); the Unicode
 * line and paragraph separators.
 */
const UNSAFE_CLASS = '[\\p{Cc}\\p{Cf}\\p{Zl}\\p{Zp}]';
// Built on first use, not as literals: V8 checks a regex literal when it compiles the script, and
// these Unicode property classes cost `breeze token` about a millisecond that way before any use.
let unsafe: RegExp | undefined;
let unsafeKeepNewlines: RegExp | undefined;
const UNSAFE = () => (unsafe ??= new RegExp(UNSAFE_CLASS, 'gu'));
const UNSAFE_KEEP_NEWLINES = () => (unsafeKeepNewlines ??= new RegExp(`(?!\\n)${UNSAFE_CLASS}`, 'gu'));
/** Printable ASCII only (keys, ids, most lines): nothing to escape, and no Unicode tables needed. */
const PLAIN = /^[ -~]*$/;
const PLAIN_LINES = /^[ -~\n]*$/;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function visible(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const cp = c.codePointAt(0) ?? 0;
  return cp <= 0xff
    ? `\\x${cp.toString(16).toUpperCase().padStart(2, '0')}`
    : `\\u{${cp.toString(16).toUpperCase()}}`;
}

const TRUSTED: unique symbol = Symbol('breeze.trustedText');

/**
 * A line the ui layer composed itself from already-escaped parts (e.g. a table row with colour
 * codes added after escaping its cells): printed as it is. Nothing else should make one.
 */
export interface TrustedLine {
  readonly [TRUSTED]: true;
  readonly text: string;
}

/** Marks a line built by src/cli/ui from escaped parts (see TrustedLine). */
export function trustedLine(text: string): TrustedLine {
  return { [TRUSTED]: true, text };
}

/** What the output functions take: plain text (escaped) or a line the ui layer built. */
export type Printable = string | TrustedLine;

function isTrusted(value: unknown): value is TrustedLine {
  return typeof value === 'object' && value !== null && (value as TrustedLine)[TRUSTED] === true;
}

/**
 * `text` as exactly one terminal line: every control, format and separator character, newlines
 * included, is replaced by a visible escape (`\x1B`, `\n`, `\u{202E}`). A single trailing newline
 * is dropped (callers used to end lines with one). Trusted lines pass as they are.
 */
export function terminalLine(text: Printable): string {
  if (isTrusted(text)) return text.text;
  const s = String(text);
  const line = s.endsWith('\n') ? s.slice(0, -1) : s;
  return PLAIN.test(line) ? line : line.replace(UNSAFE(), visible);
}

/**
 * Longest value from outside shown whole in a table cell or a line of `status`, in characters before
 * escaping: a whole issuer or key name, most URLs (`--json` has every value whole).
 */
export const MAX_CELL_LENGTH = 512;

export { clampText } from '../../core/text.js';

/** Multi-line text the CLI wrote itself (commander's help and usage errors): escapes all but `\n`. */
export function terminalBlock(text: string): string {
  return PLAIN_LINES.test(text) ? text : text.replace(UNSAFE_KEEP_NEWLINES(), visible);
}

/**
 * `JSON.stringify(value, null, 2)`, with the characters JSON leaves raw (DEL, C1 controls, bidi and
 * zero-width format characters, U+2028/U+2029) written as `\uXXXX` escapes: the same JSON value,
 * but nothing in the bytes a terminal would act on.
 */
export function terminalJson(value: unknown, opts: { compact?: boolean } = {}): string {
  const text = (opts.compact ? JSON.stringify(value) : JSON.stringify(value, null, 2)) ?? 'null';
  // outside strings JSON text is ASCII (newlines and spaces of the indentation aside), and inside
  // them JSON has escaped every C0 control: every match is inside a string
  if (PLAIN_LINES.test(text)) return text;
  return text.replace(UNSAFE_KEEP_NEWLINES(), (c) => {
    let out = '';
    for (let i = 0; i < c.length; i++) out += `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`;
    return out;
  });
}
