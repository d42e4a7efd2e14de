import { isIP, isIPv4, isIPv6 } from 'node:net';

/**
 * The bucket every per-IP limit counts a client in: an IPv4 address as it is, an IPv6 address by
 * its /64. One subscriber (a home line, a VM) usually holds a whole /64, so counting single IPv6
 * addresses would hand a client 2^64 fresh buckets. IPv4-mapped IPv6 (`::ffff:a.b.c.d`) counts as
 * the IPv4 address. Anything else (no address) is its own bucket.
 */
export function ipBucket(ip: string | undefined): string {
  if (!ip) return 'unknown';
  if (isIPv4(ip)) return ip;
  const bare = ip.replace(/%.*$/, ''); // a zone id names an interface, not a client
  if (!isIPv6(bare)) return ip;
  const groups = expandIPv6(bare);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const [hi = 0, lo = 0] = groups.slice(6);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

/** The 8 16-bit groups of a valid IPv6 address (`::` and a trailing dotted IPv4 part expanded). */
function expandIPv6(ip: string): number[] {
  let text = ip;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const parse = (part: string) => (part ? part.split(':').map((g) => Number.parseInt(g, 16)) : []);
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  const zeros = new Array<number>(8 - left.length - right.length).fill(0);
  return [...left, ...zeros, ...right];
}

/** The names of address ranges a trusted proxy list may use (as Fastify's `trustProxy` reads them). */
const PROXY_RANGES = ['loopback', 'linklocal', 'uniquelocal'] as const;

/**
 * `breeze serve --trust-proxy`: the reverse proxies (load balancers) whose `X-Forwarded-For` the
 * server believes. A comma-separated list of addresses, CIDR ranges (`10.0.0.0/8`, `fd00::/8`) and
 * the names `loopback`, `linklocal`, `uniquelocal`. A client's address is then the right-most one
 * in the header that is not a trusted proxy, so a client cannot pass itself off as another by
 * sending the header itself. A range of all addresses (`/0`) is refused: behind it any client
 * could. Throws an Error that names the bad entry.
 */
export function parseTrustedProxies(value: string): string[] {
  const entries = value
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (entries.length === 0) throw new Error('no address given');
  for (const entry of entries) {
    if ((PROXY_RANGES as readonly string[]).includes(entry)) continue;
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address);
    const bits = family === 4 ? 32 : 128;
    const ok =
      family !== 0 &&
      extra === undefined &&
      (prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits));
    if (!ok) {
      throw new Error(
        `"${entry.slice(0, 64)}" is not an address, a CIDR range or one of ${PROXY_RANGES.join(', ')}`,
      );
    }
    if (prefix !== undefined && Number(prefix) === 0) {
      throw new Error(`"${entry}" trusts every address: any client could forge X-Forwarded-For`);
    }
  }
  return entries;
}
