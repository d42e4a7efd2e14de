import { afterEach, describe, expect, it } from 'vitest';
import { colourLevel } from '../../src/cli/ui/theme.js';

describe('colourLevel (CLI.md: NO_COLOR / FORCE_COLOR as the ecosystem expects)', () => {
  it('FORCE_COLOR=false and FORCE_COLOR=0 turn colours off, as supports-color reads them', () => {
    expect(colourLevel('stdout', { FORCE_COLOR: 'false' })).toBe(0);
    expect(colourLevel('stderr', { FORCE_COLOR: 'false' })).toBe(0);
    expect(colourLevel('stdout', { FORCE_COLOR: '0' })).toBe(0);
  });

  it('FORCE_COLOR=1/true/"" force colours; NO_COLOR (non-empty) wins over it', () => {
    expect(colourLevel('stdout', { FORCE_COLOR: '1' })).toBe(1);
    expect(colourLevel('stdout', { FORCE_COLOR: 'true' })).toBe(1);
    expect(colourLevel('stdout', { FORCE_COLOR: '' })).toBe(1);
    expect(colourLevel('stdout', { FORCE_COLOR: '3' })).toBe(3);
    expect(colourLevel('stdout', { FORCE_COLOR: '1', NO_COLOR: '1' })).toBe(0);
  });

  describe('on a terminal', () => {
    const was = process.stdout.isTTY;
    afterEach(() => {
      process.stdout.isTTY = was;
    });

    it('colours a TTY, but not one whose TERM is dumb (unless FORCE_COLOR says so)', () => {
      process.stdout.isTTY = true;
      expect(colourLevel('stdout', { TERM: 'xterm' })).toBe(1);
      expect(colourLevel('stdout', { TERM: 'dumb' })).toBe(0);
      expect(colourLevel('stdout', { TERM: 'dumb', FORCE_COLOR: '1' })).toBe(1);
    });
  });
});
