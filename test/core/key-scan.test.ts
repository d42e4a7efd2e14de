import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateApiKey, isWellFormedApiKey } from '../../src/core/api-key.js';
import { BASE62 } from '../../src/core/base62.js';
import { findKeysInBuffer } from '../../src/core/key-scan.js';

const badChecksum = (key: string) =>
  key.slice(0, -1) + BASE62[(BASE62.indexOf(key.at(-1) as string) + 1) % 62];

/** The same grammar written the slow, obvious way: a regex, then the checksum. */
function reference(text: string): { key: string; line: number }[] {
  const out: { key: string; line: number }[] = [];
  const re = /brz_[0-9A-Za-z]{46}(?![0-9A-Za-z])/g;
  let taken = 0;
  for (let i = text.indexOf('brz_'); i !== -1; i = text.indexOf('brz_', i + 1)) {
    if (i < taken) continue;
    re.lastIndex = i;
    const m = re.exec(text);
    if (m && m.index === i && isWellFormedApiKey(m[0])) {
      out.push({ key: m[0], line: text.slice(0, i).split('\n').length });
      taken = i + 50;
    }
  }
  return out;
}

describe('findKeysInBuffer', () => {
  it('finds real keys anywhere, with their lines', () => {
    const [a, b, c, d] = [generateApiKey(), generateApiKey(), generateApiKey(), generateApiKey()];
    const text = `${a}\nexport KEY=${b}\n\n  "token": "${c}", other=x${d}\n`;
    const hits = findKeysInBuffer(Buffer.from(text));
    expect(hits.map((h) => [h.key, h.line])).toEqual([
      [a, 1],
      [b, 2],
      [c, 4],
      [d, 4],
    ]);
    expect(hits[0]?.offset).toBe(0);
    // at the very end of a buffer, without a newline
    expect(findKeysInBuffer(Buffer.from(`x=${a}`)).map((h) => h.key)).toEqual([a]);
  });

  it('never reports a look-alike', () => {
    const k = generateApiKey();
    const lookAlikes = [
      badChecksum(k),
      k.slice(0, -1),
      `${k}A`,
      `${k}0`,
      k.replace('brz_', 'brx_'),
      k.replace('brz_', 'BRZ_'),
      `${k.slice(0, 20)}-${k.slice(21)}`,
      `${k.slice(0, 20)}é${k.slice(21)}`,
      `brz_${'A'.repeat(46)}`,
    ];
    for (const l of lookAlikes) {
      expect(findKeysInBuffer(Buffer.from(`key=${l}\n`)), l).toEqual([]);
    }
    // brz_ glued before a key: the key itself is still found
    expect(findKeysInBuffer(Buffer.from(`brz_${k}`)).map((h) => h.key)).toEqual([k]);
  });

  it('agrees with the regex-and-checksum reference on random text', () => {
    const key = fc.constant(null).map(() => generateApiKey());
    const piece = fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.constantFrom('brz_', '\n', ' ', '=', '"'),
      key,
      key.map(badChecksum),
      key.map((k) => k.slice(0, 49)),
      key.map((k) => `${k}x`),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
        const text = pieces.join('');
        const got = findKeysInBuffer(Buffer.from(text)).map((h) => ({ key: h.key, line: h.line }));
        expect(got).toEqual(reference(text));
      }),
      { numRuns: 500 },
    );
  });
});
