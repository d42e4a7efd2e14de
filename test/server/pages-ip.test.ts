import { describe, expect, it } from 'vitest';
import { displayIp, sameNetwork } from '../../src/server/pages/ip.js';

describe('sameNetwork (the device page warns when the requester is elsewhere)', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1', true],
    ['::ffff:127.0.0.1', '127.0.0.1', true],
    ['10.0.0.1', '10.0.0.2', false],
    ['203.0.113.9', '::ffff:198.51.100.7', false],
    ['2001:db8:1:2::5', '2001:db8:1:2:aaaa::1', true],
    ['2001:DB8::1', '2001:db8:0:0:1::', true],
    ['2001:db8:1:3::5', '2001:db8:1:2::5', false],
    ['::1', '::1', true],
    ['::1', '127.0.0.1', false],
    ['not an ip', 'also not', false],
  ])('%s vs %s -> %s', (a, b, same) => {
    expect(sameNetwork(a, b)).toBe(same);
    expect(sameNetwork(b, a)).toBe(same);
  });

  it('shows IPv4 clients of a dual-stack socket without the mapping prefix', () => {
    expect(displayIp('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(displayIp('2001:db8::1')).toBe('2001:db8::1');
  });
});
