import { Ajv } from 'ajv';
import ajvFormats from 'ajv-formats';

/**
 * Input rules every route shares (API.md "Conventions"): what a text field may contain, what an id
 * can look like, what an email is. Routes take their schema fragments from routes/schemas.ts, which
 * builds them from these constants, so a new field or route gets the same rules.
 */

/**
 * C0 controls (TAB, CR and LF included), DEL and the C1 controls. PostgreSQL cannot store U+0000
 * at all and the others rewrite terminals and logs, so no text field accepts any of them.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is its purpose
export const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/u;

/**
 * JSON-schema `pattern` (ajv compiles it with the `u` flag): no control character anywhere, and no
 * lone UTF-16 surrogate. JSON lets a body spell one (`"\\ud800"`), but it is no Unicode character
 * and has no UTF-8 form: each engine would store its own replacement (SQLite three U+FFFD,
 * PostgreSQL one), so the name read back would differ from the one the create answered. Under the
 * `u` flag a valid pair is one code point outside the range, so emoji and the like still pass.
 */
export const NO_CONTROLS_PATTERN = '^[^\\u0000-\\u001f\\u007f-\\u009f\\ud800-\\udfff]*$';
/** The same, and at least one non-space character. */
export const PRINTABLE_PATTERN = '^(?=[\\s\\S]*\\S)[^\\u0000-\\u001f\\u007f-\\u009f\\ud800-\\udfff]*$';

/** True when `value` holds no control character (see CONTROL_CHARS). */
export function hasNoControls(value: string): boolean {
  return !CONTROL_CHARS.test(value);
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is its purpose
const EVERY_CONTROL_CHAR = /[\u0000-\u001f\u007f-\u009f]/gu;

/** `value` without its control characters (see CONTROL_CHARS): for text a client sent that is kept. */
export function withoutControls(value: string): string {
  return value.replace(EVERY_CONTROL_CHAR, '');
}

/**
 * Every id this server hands out (`key_…`, `login_…`, `code_…`) is ASCII letters, digits, `_` and
 * `-`. A path parameter outside this alphabet names nothing that can exist: it is answered `404`
 * without a database lookup (and never reaches PostgreSQL, which refuses NUL bytes).
 */
export const ID_MAX_LENGTH = 128;
const ID = new RegExp(`^[A-Za-z0-9_-]{1,${ID_MAX_LENGTH}}$`);
export const ID_PATTERN = ID.source;

/** True when `value` could be an id this server issued (see ID_PATTERN). */
export function isPossibleId(value: unknown): value is string {
  return typeof value === 'string' && ID.test(value);
}

/** The one email rule: the JSON API's `format: email` and the `/login` form both use it. */
export const emailSchema = { type: 'string', format: 'email', minLength: 3, maxLength: 254 } as const;

// ajv-formats is CommonJS: its default export arrives as the module object under NodeNext types
export const addFormats = ((ajvFormats as unknown as { default?: unknown }).default ?? ajvFormats) as (
  ajv: Ajv,
) => Ajv;

const formatsAjv = new Ajv({ strict: false });
addFormats(formatsAjv);
const checkEmail = formatsAjv.compile(emailSchema);
const checkDateTime = formatsAjv.compile({ type: 'string', format: 'date-time' });

/**
 * True for an address the API's `format: email` accepts (ajv-formats: ASCII only, so no control,
 * zero-width or other invisible character gets through).
 */
export function isValidEmail(value: string): boolean {
  return checkEmail(value) && !CONTROL_CHARS.test(value);
}

/**
 * True for a time the API's `format: date-time` accepts (`expires_at`), for text read outside a
 * schema (a query's `since`): RFC 3339 with its offset, a day the month has, nothing after it.
 */
export function isDateTime(value: string): boolean {
  return checkDateTime(value);
}
