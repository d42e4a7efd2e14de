import { hostname } from 'node:os';
import type { CliLoginStart } from '../../core/types.js';

/**
 * Host (as `ssh -L` wants it: `127.0.0.1`, `[::1]`, `localhost`) and port of `url` when it is on
 * 127.0.0.0/8, ::1 or localhost; else null.
 */
export function loopbackTarget(url: string): { host: string; port: string } | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
  if (!loopback) return null;
  return { host: u.hostname, port: u.port || (u.protocol === 'https:' ? '443' : '80') };
}

/**
 * What device mode prints: where to enter the code. A loopback address (the embedded server, or
 * `breeze serve` on 127.0.0.1) opens only on this machine, so then it says so and gives the SSH
 * port forward that makes it reachable from the device with the browser.
 */
export function deviceInstructions(
  start: Pick<CliLoginStart, 'verification_uri' | 'verification_uri_complete' | 'user_code'>,
  env: NodeJS.ProcessEnv,
  host: string = hostname(),
): string[] {
  const loopback = loopbackTarget(start.verification_uri);
  const code = ['', `    ${start.user_code}`, '', `Or open: ${start.verification_uri_complete}`];
  if (!loopback)
    return [`To log in, open ${start.verification_uri} on any device and enter the code:`, ...code];
  // in an SSH session, the address the user connected to (SSH_CONNECTION: client port server port)
  const server = env.SSH_CONNECTION?.trim().split(/\s+/)[2] || host || '<this host>';
  const user = env.USER || env.LOGNAME;
  const target = user ? `${user}@${server}` : server;
  return [
    `To log in, open ${start.verification_uri} in a browser on this machine and enter the code:`,
    ...code,
    '',
    'That address works only on this machine (the server listens on loopback). To use a browser on',
    'another device, forward the port over SSH from that device first, then open the URL there:',
    `    ssh -L ${loopback.port}:${loopback.host}:${loopback.port} ${target}`,
  ];
}
