import { ipBucket } from '../client-ip.js';

/**
 * True when two client addresses are the same machine as far as we can tell: the per-IP limits'
 * bucket (client-ip.ts) — equal IPv4 addresses, or IPv6 addresses in one /64 (one machine uses
 * several temporary addresses of its network's /64); IPv4-mapped IPv6 counts as IPv4.
 */
export function sameNetwork(a: string, b: string): boolean {
  return ipBucket(a.trim()) === ipBucket(b.trim());
}

/** An address as people read it: IPv4 clients of a dual-stack socket without the `::ffff:` prefix. */
export function displayIp(ip: string): string {
  return /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip)?.[1] ?? ip;
}
