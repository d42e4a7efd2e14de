import { describe, expect, it } from 'vitest';
import { idleMs } from '../../src/cli/commands/server.js';

/**
 * README: the resident embedded server runs "until it has been idle for 2 minutes"
 * (`BREEZE_SERVER_IDLE_MS`, default 120000). `idleMs` is what `breeze server run` hands the
 * resident server and what `breeze server status` reports; resident.test.ts proves the server exits
 * after that idle time.
 */
describe('the resident server idle time', () => {
  it('is 2 minutes by default, and when BREEZE_SERVER_IDLE_MS is not a positive integer', () => {
    expect(idleMs({})).toBe(120_000);
    for (const bad of ['', '0', '-5', '1e3', 'soon', '12345678901'])
      expect(idleMs({ BREEZE_SERVER_IDLE_MS: bad }), bad).toBe(120_000);
  });

  it('is BREEZE_SERVER_IDLE_MS when set', () => {
    expect(idleMs({ BREEZE_SERVER_IDLE_MS: '1500' })).toBe(1500);
  });
});
