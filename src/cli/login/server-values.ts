/**
 * What the login takes from the server's answer to `POST /v1/cli/logins`, bounded: the client has
 * checked the types (src/client/validate.ts); this decides what the CLI does with the values. A
 * malicious or broken server must not turn the poll into a busy loop (an `interval` beyond
 * setTimeout's 2^31 ms fires at once), keep the CLI waiting for weeks, or make it open a `file://` or
 * phishing URL in the user's browser.
 */
import type { CliLoginStart } from '../../core/types.js';

/** Poll at most this rarely, at least this often (s). */
export const MIN_INTERVAL_S = 1;
export const MAX_INTERVAL_S = 60;
/** API.md: a login lives 600 s; the floor leaves room for a few polls whatever the server says. */
export const MIN_EXPIRES_S = 60;
export const MAX_EXPIRES_S = 600;
const MAX_URL_LENGTH = 2048;

function clamp(value: number, min: number, max: number, fallback: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) return fallback;
  return Math.min(max, Math.max(min, value));
}

/** A poll interval in seconds within [1, 60] (5 s for nonsense). */
export function clampInterval(seconds: number): number {
  return clamp(seconds, MIN_INTERVAL_S, MAX_INTERVAL_S, 5);
}

/** A login lifetime in seconds within [60, 600] (600 s for nonsense). */
export function clampExpiresIn(seconds: number): number {
  return clamp(seconds, MIN_EXPIRES_S, MAX_EXPIRES_S, MAX_EXPIRES_S);
}

/**
 * `candidate` as a URL the CLI may open and print as a link: http(s), on the origin of `baseUrl`
 * (the server the CLI talks to), without user name or password; null otherwise. The result is the
 * URL's serialisation (ASCII, control characters percent-encoded).
 */
export function sameOriginUrl(candidate: string, baseUrl: string): string | null {
  if (candidate.length > MAX_URL_LENGTH) return null;
  let url: URL;
  let base: URL;
  try {
    url = new URL(candidate);
    base = new URL(baseUrl);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  if (url.username || url.password) return null;
  if (url.origin !== base.origin) return null;
  return url.href;
}

/**
 * The login start with bounded numbers and trustworthy URLs: a verification URL that is not on the
 * server's own origin is replaced by the server's own `/device` page (where the user types the
 * code), with a warning through `warn`.
 */
export function boundLoginStart(
  start: CliLoginStart,
  baseUrl: string,
  warn: (message: string) => void,
): CliLoginStart {
  const device = `${baseUrl.replace(/\/+$/, '')}/device`;
  const uri = sameOriginUrl(start.verification_uri, baseUrl);
  const complete = sameOriginUrl(start.verification_uri_complete, baseUrl);
  if (!uri || !complete) {
    warn(
      `The server sent a login link that is not an http(s) address on ${new URL(baseUrl).origin}; it is ignored. Use ${device} and type the code there.`,
    );
  }
  return {
    ...start,
    verification_uri: uri ?? device,
    verification_uri_complete: complete ?? device,
    interval: clampInterval(start.interval),
    expires_in: clampExpiresIn(start.expires_in),
  };
}

/** "The code expires in 10 minutes." for a lifetime in seconds (already bounded). */
export function expiryNote(seconds: number): string {
  const minutes = Math.max(1, Math.round(seconds / 60));
  return `The code expires in ${minutes} minute${minutes === 1 ? '' : 's'}.`;
}

/** Waits `ms` (bounded to [0, 60 s]: a timer past 2^31 ms would fire at once and spin). */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  const wait = Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_INTERVAL_S * 1000) : 5000;
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, wait);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
