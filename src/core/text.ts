/**
 * `text` cut to at most `max` characters, ending in "…" when cut (never in half a surrogate pair):
 * a value from outside (a megabyte-long name or message from a server) is shown, not dumped.
 */
export function clampText(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max - 1).replace(/[\uD800-\uDBFF]$/, '')}…`;
}
