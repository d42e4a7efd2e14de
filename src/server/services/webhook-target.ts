import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/**
 * The SSRF guard of webhook targets (PLATFORM.md "Webhooks"): `https` only, and never an address
 * inside the server's own networks — private, loopback, link-local, unique-local, CGNAT, multicast,
 * unspecified, documentation/benchmark ranges, or an IPv6 form that embeds one of those — unless
 * the server runs with `--allow-private-webhooks`. The check runs when a webhook is created and
 * again inside the connection's DNS lookup at delivery, so a name that resolves elsewhere by then
 * (DNS rebinding) reaches nothing: the address connected to is the address checked.
 */

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to every address (tests inject one: a name that points at 127.0.0.1). */
export type Resolver = (host: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (host) =>
  (await dnsLookup(host, { all: true, verbatim: true })).map((a) => ({
    address: a.address,
    family: a.family === 6 ? 6 : 4,
  }));

/** Why a target was refused; the message is shown to the user as it is. */
export class TargetRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TargetRefused';
  }
}

/** A host name that resolves to nothing (now): a delivery cannot connect, a creation may still go ahead. */
export class TargetUnresolved extends TargetRefused {}

const BLOCKED = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // CGNAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata lives here)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and 255.255.255.255 broadcast
] as const) {
  BLOCKED.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique-local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated, still routed internally)
  ['ff00::', 8], // multicast
] as const) {
  BLOCKED.addSubnet(net, prefix, 'ipv6');
}

/** The 16 bytes of an IPv6 address (any textual form node accepts), or null. */
function ipv6Bytes(address: string): Buffer | null {
  const s = address.split('%')[0] ?? '';
  if (isIP(s) !== 6) return null;
  let text = s;
  // a trailing dotted quad (::ffff:1.2.3.4) becomes two hex groups
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad) {
    const p = quad[1]!.split('.').map(Number);
    text = `${text.slice(0, -quad[1]!.length)}${((p[0]! << 8) | p[1]!).toString(16)}:${((p[2]! << 8) | p[3]!).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups =
    tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8) return null;
  const out = Buffer.alloc(16);
  for (let i = 0; i < 8; i++) out.writeUInt16BE(Number.parseInt(groups[i] ?? '0', 16), i * 2);
  return out;
}

function v4(bytes: Buffer, offset: number): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/**
 * True when `address` (an IP literal) is a public unicast address a webhook may reach. IPv6 forms
 * that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64
 * `64:ff9b::/96`, 6to4 `2002::/16`) are judged by that IPv4 address.
 */
export function isPublicAddress(address: string): boolean {
  const plain = address.replace(/^\[|\]$/g, '');
  const family = isIP(plain);
  if (family === 4) return !BLOCKED.check(plain, 'ipv4');
  if (family !== 6) return false;
  const b = ipv6Bytes(plain);
  if (!b) return false;
  if (BLOCKED.check(plain.split('%')[0] ?? '', 'ipv6')) return false;
  const zero = (from: number, to: number) => b.subarray(from, to).every((x) => x === 0);
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated)
  if (zero(0, 10) && ((b[10] === 0xff && b[11] === 0xff) || (b[10] === 0 && b[11] === 0))) {
    return isPublicAddress(v4(b, 12));
  }
  // 64:ff9b::/96 (NAT64) and 64:ff9b:1::/48 (local-use NAT64)
  if (b.readUInt16BE(0) === 0x64 && b.readUInt16BE(2) === 0xff9b) {
    if (b.readUInt16BE(4) === 1) return false;
    return isPublicAddress(v4(b, 12));
  }
  // 2002:AABB:CCDD::/48 (6to4) embeds AA.BB.CC.DD
  if (b.readUInt16BE(0) === 0x2002) return isPublicAddress(v4(b, 2));
  return true;
}

export interface TargetPolicy {
  /** `--allow-private-webhooks`: http and every address (development, tests) */
  allowPrivate: boolean;
  resolve?: Resolver;
}

/** The longest webhook URL accepted. */
export const MAX_URL_LENGTH = 2048;

/**
 * Parses and checks a webhook URL's form (scheme, no credentials, no fragment); throws
 * TargetRefused with a message for the user. Returns the parsed URL.
 */
export function parseTargetUrl(raw: string, policy: Pick<TargetPolicy, 'allowPrivate'>): URL {
  if (raw.length > MAX_URL_LENGTH)
    throw new TargetRefused(`The URL is longer than ${MAX_URL_LENGTH} characters.`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TargetRefused('The URL is not a valid absolute URL (e.g. https://hooks.example.com/breeze).');
  }
  if (url.protocol !== 'https:' && !(policy.allowPrivate && url.protocol === 'http:')) {
    throw new TargetRefused(
      policy.allowPrivate
        ? 'Webhook URLs must use https or http.'
        : 'Webhook URLs must use https (http is allowed only on a server run with --allow-private-webhooks).',
    );
  }
  if (url.username || url.password) {
    throw new TargetRefused('Webhook URLs must not contain a user name or password.');
  }
  if (url.hash) throw new TargetRefused('Webhook URLs must not contain a fragment (#...).');
  if (!url.hostname) throw new TargetRefused('The URL has no host.');
  return url;
}

function refusedAddress(host: string, address: string): TargetRefused {
  const shown = host === address || host === `[${address}]` ? address : `${host} (${address})`;
  return new TargetRefused(
    `The webhook target ${shown} is a private, loopback, link-local or otherwise non-public address: refused (a server run with --allow-private-webhooks allows it).`,
  );
}

/**
 * The addresses a delivery to `host` may connect to: every address it resolves to, all of them
 * public (one private answer refuses the whole name: which one a client would pick is not ours to
 * guess). IP literals are checked as they are.
 */
export async function resolveTarget(host: string, policy: TargetPolicy): Promise<ResolvedAddress[]> {
  const literal = host.replace(/^\[|\]$/g, '');
  const family = isIP(literal);
  if (family !== 0) {
    if (!policy.allowPrivate && !isPublicAddress(literal)) throw refusedAddress(host, literal);
    return [{ address: literal, family: family === 6 ? 6 : 4 }];
  }
  let addresses: ResolvedAddress[];
  try {
    addresses = await (policy.resolve ?? systemResolver)(host);
  } catch {
    addresses = [];
  }
  if (addresses.length === 0) throw new TargetUnresolved(`The webhook host ${host} could not be resolved.`);
  if (!policy.allowPrivate) {
    const bad = addresses.find((a) => !isPublicAddress(a.address));
    if (bad) throw refusedAddress(host, bad.address);
  }
  return addresses;
}

/**
 * The whole check of a URL, as creating a webhook runs it: the URL's form, and the addresses its host
 * resolves to now. A name that resolves to nothing is accepted (DNS may be down, or the name not
 * published yet); every delivery resolves and checks it again before connecting (guardedLookup),
 * and the delivery log then says why an attempt failed.
 */
export async function checkTarget(raw: string, policy: TargetPolicy): Promise<URL> {
  const url = parseTargetUrl(raw, policy);
  try {
    await resolveTarget(url.hostname, policy);
  } catch (err) {
    if (!(err instanceof TargetUnresolved)) throw err;
  }
  return url;
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | { address: string; family: number }[],
  family?: number,
) => void;

/**
 * A `net.connect` `lookup` that resolves, checks and hands back only checked addresses: the socket
 * connects to exactly what was checked (no second resolution an attacker's DNS could answer
 * differently).
 */
export function guardedLookup(policy: TargetPolicy) {
  return (hostname: string, options: { all?: boolean } | number, callback: LookupCallback): void => {
    const all = typeof options === 'object' && options !== null && options.all === true;
    resolveTarget(hostname, policy).then(
      (addresses) => {
        if (all) callback(null, addresses);
        else callback(null, addresses[0]!.address, addresses[0]!.family);
      },
      (err: Error) => {
        const e = Object.assign(new Error(err.message), { code: 'EWEBHOOKTARGET' });
        callback(e as NodeJS.ErrnoException, '', 0);
      },
    );
  };
}
