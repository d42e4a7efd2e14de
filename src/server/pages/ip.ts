import { isIPv4, isIPv6 } from 'node:net';

/** `::ffff:192.0.2.1` (an IPv4 client on a dual-stack socket) -> `192.0.2.1`; anything else as is. */
function unmapped(ip: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  return m?.[1] ?? ip;
}

/** The eight 16-bit groups of an IPv6 address, or null. */
function ipv6Groups(ip: string): number[] | null {
  if (!isIPv6(ip)) return null;
  let canonical: string;
  try {
    // WHATWG URL parsing canonicalises IPv6 (embedded IPv4 tails included) to hex groups
    canonical = new URL(`http://[${ip.replace(/%.*$/, '')}]/`).hostname.slice(1, -1);
  } catch {
    return null;
  }
  const [head = '', tail] = canonical.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : Array(8 - left.length - right.length).fill('0');
  const groups = [...left, ...zeros, ...right].map((g) => Number.parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => Number.isInteger(g)) ? groups : null;
}

/**
 * True when two client addresses are the same machine as far as we can tell: equal IPv4 addresses,
 * or IPv6 addresses in one /64 (one machine uses several temporary addresses of its network's /64).
 */
export function sameNetwork(a: string, b: string): boolean {
  const x = unmapped(a.trim());
  const y = unmapped(b.trim());
  if (x === y) return true;
  if (isIPv4(x) || isIPv4(y)) return false;
  const gx = ipv6Groups(x);
  const gy = ipv6Groups(y);
  if (!gx || !gy) return false;
  return gx.slice(0, 4).every((g, i) => g === gy[i]);
}

/** An address as people read it: IPv4 clients of a dual-stack socket without the `::ffff:` prefix. */
export function displayIp(ip: string): string {
  return unmapped(ip);
}
