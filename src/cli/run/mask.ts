/**
 * `breeze run --mask` (issue 15): replaces the secrets handed to the child, and their encoded forms,
 * in its output by `[NAME]`, also when a value arrives split over several writes.
 *
 * Forms masked, per secret value:
 * - the value itself;
 * - percent-encoded (encodeURIComponent, and everything but ASCII letters and digits escaped; each
 *   with upper- and lower-case hex) and form-encoded (`+` for space);
 * - base64, standard and URL-safe, at each of the 3 alignments the value can have inside a longer
 *   base64 stream (e.g. `user:key` in a Basic auth header). Only the characters that depend on the
 *   value's bytes alone are matched (a character that mixes in a neighbouring byte differs from one
 *   stream to the next); what stays visible is at most one character at each end, i.e. less than
 *   one byte of the value. The value encoded on its own is matched whole, padding included.
 *
 * Streaming: bytes are passed on as soon as they cannot be the start of a secret's form. Only a
 * tail that is a prefix of some form is held back (until the next write decides it, or the end).
 * A progress bar that redraws with `\r` and never writes a newline still shows at once.
 */

export interface Secret {
  /** the variable's name: the replacement is `[name]` */
  name: string;
  value: string;
}

interface Pattern {
  bytes: Buffer;
  replacement: Buffer;
}

/** Secrets shorter than this are not masked: they would mangle ordinary output (no Breeze key is). */
export const MIN_SECRET_LENGTH = 8;

/**
 * The base64 characters fully determined by `value` when it starts `offset` (0, 1, 2) bytes into a
 * 3-byte group of a longer stream.
 */
export function base64Core(value: Buffer, offset: number, urlSafe: boolean): string {
  const padded = Buffer.concat([Buffer.alloc(offset), value]);
  let text = padded.toString('base64').replace(/=+$/, '');
  if (urlSafe) text = text.replace(/\+/g, '-').replace(/\//g, '_');
  // character i covers bits [6i, 6i+6) of the stream; the value occupies bits [8*offset, 8*(offset+n))
  const firstBit = 8 * offset;
  const endBit = 8 * (offset + value.length);
  const first = Math.ceil(firstBit / 6);
  const last = Math.floor(endBit / 6); // exclusive
  return text.slice(first, last);
}

/** Every form of `value` that is masked (deduplicated, longest first). */
export function maskedForms(value: string): string[] {
  const raw = Buffer.from(value, 'utf8');
  const forms = new Set<string>([value]);
  const pct = encodeURIComponent(value);
  forms.add(pct);
  forms.add(pct.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()));
  forms.add(pct.replace(/%20/g, '+'));
  // stricter encoders: everything but ASCII letters and digits escaped (brz%5F…). Not every byte
  // escaped: those forms start with `%`, and the trailing `%` of every progress bar would wait
  for (const upper of [true, false]) {
    let form = '';
    for (const b of raw) {
      const alnum = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
      const hex = b.toString(16).padStart(2, '0');
      form += alnum ? String.fromCharCode(b) : `%${upper ? hex.toUpperCase() : hex}`;
    }
    forms.add(form);
  }
  for (const urlSafe of [false, true]) {
    for (const offset of [0, 1, 2]) {
      const core = base64Core(raw, offset, urlSafe);
      if (core.length >= MIN_SECRET_LENGTH) forms.add(core);
    }
  }
  // the value encoded on its own (`printf %s "$KEY" | base64`): its last characters and padding are
  // then fixed too, so the whole encoding goes, not all but a stray `Q=` (longest match wins)
  const whole = raw.toString('base64');
  const unpadded = whole.replace(/=+$/, '');
  const urlSafe = unpadded.replace(/\+/g, '-').replace(/\//g, '_');
  for (const f of [whole, unpadded, urlSafe, urlSafe + whole.slice(unpadded.length)]) forms.add(f);
  return [...forms].filter((f) => f.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
}

/** One output stream's masker: `push` returns the bytes that may be shown now, `end` the rest. */
export class Masker {
  private readonly patterns: Pattern[];
  private readonly maxLen: number;
  private held: Buffer = Buffer.alloc(0);

  constructor(secrets: readonly Secret[]) {
    const seen = new Set<string>();
    this.patterns = [];
    for (const s of secrets) {
      if (s.value.length < MIN_SECRET_LENGTH) continue;
      for (const form of maskedForms(s.value)) {
        if (seen.has(form)) continue;
        seen.add(form);
        this.patterns.push({ bytes: Buffer.from(form, 'utf8'), replacement: Buffer.from(`[${s.name}]`) });
      }
    }
    this.patterns.sort((a, b) => b.bytes.length - a.bytes.length);
    this.maxLen = this.patterns.reduce((m, p) => Math.max(m, p.bytes.length), 0);
  }

  get active(): boolean {
    return this.patterns.length > 0;
  }

  /** Masks `chunk` (with what was held back); returns what can be written now. */
  push(chunk: Buffer): Buffer {
    if (!this.active) return chunk;
    const data = this.held.length ? Buffer.concat([this.held, chunk]) : chunk;
    const { out, rest } = this.scan(data, false);
    this.held = rest;
    return out;
  }

  /** The stream ended: everything still held back (masked where it matches). */
  end(): Buffer {
    const { out } = this.scan(this.held, true);
    this.held = Buffer.alloc(0);
    return out;
  }

  private scan(data: Buffer, final: boolean): { out: Buffer; rest: Buffer } {
    const parts: Buffer[] = [];
    let from = 0;
    // next match position of each pattern at or after `from` (-1: none)
    const next = this.patterns.map((p) => data.indexOf(p.bytes, 0));
    for (;;) {
      let best = -1;
      for (let i = 0; i < next.length; i++) {
        if (next[i]! >= 0 && next[i]! < from) next[i] = data.indexOf(this.patterns[i]!.bytes, from);
        const at = next[i]!;
        if (at < 0) continue;
        // leftmost; at the same position the longest (patterns are sorted longest first)
        if (best < 0 || at < next[best]!) best = i;
      }
      if (best < 0) break;
      const at = next[best]!;
      const p = this.patterns[best]!;
      parts.push(data.subarray(from, at), p.replacement);
      from = at + p.bytes.length;
    }
    const keep = final ? 0 : this.heldTail(data, from);
    parts.push(data.subarray(from, data.length - keep));
    return { out: Buffer.concat(parts), rest: Buffer.from(data.subarray(data.length - keep)) };
  }

  /** Length of the longest tail of data[from..] that is a proper prefix of some pattern. */
  private heldTail(data: Buffer, from: number): number {
    const start = Math.max(from, data.length - (this.maxLen - 1));
    for (let pos = start; pos < data.length; pos++) {
      const len = data.length - pos;
      for (const p of this.patterns) {
        if (p.bytes.length > len && p.bytes[0] === data[pos] && data.compare(p.bytes, 0, len, pos) === 0) {
          return len;
        }
      }
    }
    return 0;
  }
}
