import type { FastifyReply, FastifyRequest } from 'fastify';
import { type BrowserSession, parseCookies, type Sessions } from '../session.js';
import { hasNoControls } from '../validation.js';
import type { Flash } from './layout.js';

type Fields = Record<string, unknown> | null | undefined;

/** A single text field of a form or query string; repeated or non-text fields count as missing. */
export function field(source: unknown, name: string): string | undefined {
  const v = (source as Fields)?.[name];
  return typeof v === 'string' ? v : undefined;
}

/** Every value of a repeatable field (checkboxes): one value, several, or none. */
export function fieldList(source: unknown, name: string): string[] {
  const v = (source as Fields)?.[name];
  if (typeof v === 'string') return [v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string').slice(0, 20) : [];
}

/**
 * A name typed into a form: trimmed, 1..`max` characters, no control characters (the same rule as
 * the API's `textSchema`). Undefined when it breaks one.
 */
export function textInput(value: string | undefined, max: number): string | undefined {
  const v = (value ?? '').trim();
  if (v.length === 0 || v.length > max || !hasNoControls(v)) return undefined;
  return v;
}

const FLASH_COOKIE = 'breeze_flash';

/**
 * One-time messages across a POST-redirect-GET: a short-lived cookie holding the message, signed
 * with a proof of the session it was set for (Sessions.proof: keyed by that session's secret), so
 * that nothing but this server can put words on our pages, and a message set for one session shows
 * in no other (a cookie planted over plain http, or carried from another browser, shows nothing).
 * Read once: the page that shows it clears it. Never carries a secret (the plaintext of a key is
 * rendered in the POST's own answer, never in a flash).
 */
export class FlashCookie {
  constructor(private readonly sessions: Sessions) {}

  private get name(): string {
    return this.sessions.secure ? `__Host-${FLASH_COOKIE}` : FLASH_COOKIE;
  }

  private cookie(value: string, maxAge: number): string {
    return [`${this.name}=${value}`, 'Path=/', `Max-Age=${maxAge}`, 'HttpOnly', 'SameSite=Lax']
      .concat(this.sessions.secure ? ['Secure'] : [])
      .join('; ');
  }

  private append(reply: FastifyReply, cookie: string): void {
    const prev = reply.getHeader('set-cookie');
    const list = prev === undefined ? [] : Array.isArray(prev) ? prev.map(String) : [String(prev)];
    reply.header('set-cookie', [...list, cookie]);
  }

  /** Sets the message the next page of `session` shows. */
  set(reply: FastifyReply, session: BrowserSession, flash: Flash): void {
    const payload = Buffer.from(JSON.stringify({ k: flash.kind, t: flash.text.slice(0, 500) })).toString(
      'base64url',
    );
    this.append(reply, this.cookie(`${payload}.${this.sessions.proof(session, `flash:${payload}`)}`, 120));
  }

  /** The pending message of `session`, if any (and clears it, whoever's it was). */
  take(request: FastifyRequest, reply: FastifyReply, session: BrowserSession): Flash | null {
    const raw = parseCookies(request.headers.cookie).get(this.name);
    if (!raw) return null;
    this.append(reply, this.cookie('', 0));
    const [payload, sig] = raw.split('.');
    if (!payload || !this.sessions.checkProof(session, `flash:${payload}`, sig)) return null;
    try {
      const v = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
        k?: unknown;
        t?: unknown;
      };
      if ((v.k !== 'ok' && v.k !== 'error') || typeof v.t !== 'string') return null;
      return { kind: v.k, text: v.t };
    } catch {
      return null;
    }
  }
}
