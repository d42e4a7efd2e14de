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

/**
 * The client's address as a bare IP: `request.ip` — the address that connects, or behind trusted
 * proxies (`--trust-proxy`) the one their X-Forwarded-For names. A forwarded entry with a port
 * (`203.0.113.5:4444`, `[2001:db8::1]:4444`, as some balancers write it) loses the port, so a
 * client does not get a new per-IP bucket for every source port. One that is no address at all (a
 * proxy's bug, or text a client inside the trusted range wrote itself) counts as the connecting
 * address, the proxy's own: it never reaches a limit's key, an audit event or a page as it is.
 */
export function clientIp(request: { ip: string; socket?: { remoteAddress?: string } }): string {
  const ip = request.ip;
  if (isIP(ip) !== 0) return ip;
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(ip);
  if (bracketed && isIPv6(bracketed[1] as string)) return bracketed[1] as string;
  const withPort = /^([\d.]+):\d{1,5}$/.exec(ip);
  if (withPort && isIPv4(withPort[1] as string)) return withPort[1] as string;
  return request.socket?.remoteAddress ?? '';
}

/** The names of address ranges a trusted proxy list may use (as Fastify's `trustProxy` reads them). */
const PROXY_RANGES = ['loopback', 'linklocal', 'uniquelocal'] as const;

/** The shortest prefix a trusted range may have: a shorter one takes in much of the Internet. */
const MIN_PREFIX = { 4: 8, 6: 8 } as const;

/**
 * `breeze serve --trust-proxy`: the reverse proxies (load balancers) whose `X-Forwarded-For` the
 * server believes. A comma-separated list of addresses, CIDR ranges (`10.0.0.0/8`, `fd00::/8`) and
 * the names `loopback`, `linklocal`, `uniquelocal`. A client's address is then the right-most one
 * in the header that is not a trusted proxy, so a client cannot pass itself off as another by
 * sending the header itself. Ranges wider than a /8 are refused: behind them
 * clients could, as they would then be trusted proxies themselves; an IPv4 range is written as IPv4
 * (`::ffff:10.0.0.0/104` is refused). Throws an Error that names the bad entry.
 */
export function parseTrustedProxies(value: string): string[] {
  const entries = value
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (entries.length === 0) throw new Error('no address given');
  for (const entry of entries) {
    if ((PROXY_RANGES as readonly string[]).includes(entry)) continue;
    const shown = `"${entry.slice(0, 64)}"`;
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address);
    const ok =
      family !== 0 &&
      extra === undefined &&
      (prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128)));
    if (!ok) {
      throw new Error(`${shown} is not an address, a CIDR range or one of ${PROXY_RANGES.join(', ')}`);
    }
    if (prefix === undefined) continue;
    if (family === 6 && /^::ffff:/i.test(address)) {
      throw new Error(`${shown}: write an IPv4 range as IPv4 (e.g. 10.0.0.0/8)`);
    }
    const min = MIN_PREFIX[family as 4 | 6];
    if (Number(prefix) < min) {
      throw new Error(
        `${shown} is wider than /${min}: clients in it could name any address as theirs (list your proxies' own subnets)`,
      );
    }
  }
  return entries;
}
