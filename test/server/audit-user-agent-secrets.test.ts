import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scrubText } from '../../src/server/services/audit.js';
import { testEngines } from '../helpers/engines.js';
import type { TestServer } from '../helpers/server.js';

/**
 * PLATFORM.md "Audit log and usage": "No secret ever appears in an event." The user agent is the
 * one field of an event a client writes verbatim, and events are listed by GET /v1/audit-events and
 * sent to every subscribed webhook: a key or JWT a client puts there (a script's
 * `curl -A "deploy $BREEZE_API_KEY"`) is cut like any key in `details`, on both engines.
 */

const eng = testEngines();
afterAll(() => eng.stop());

type Json = Record<string, unknown>;

describe('scrubText', () => {
  it('cuts keys and JWTs, leaves look-alikes, and reads a hostile 16 KB header in linear time', () => {
    const jwt = `eyJhbGciOiJFZDI1NTE5In0.eyJzdWIiOiJ1c3JfMDEifQ.${'A'.repeat(86)}`;
    expect(scrubText(`a ${jwt} b`)).toBe('a eyJ… b');
    expect(scrubText('eyJ without dots, eyJa.b only one dot')).toBe('eyJ without dots, eyJa.b only one dot');
    // a JWT after parts of its run that are none (a `..`, an eyJ without its parts)
    expect(scrubText(`ua eyJx..${jwt}`)).toBe('ua eyJx..eyJ…');
    expect(scrubText(`a.eyJ..${jwt} b`)).toBe('a.eyJ..eyJ… b');
    expect(scrubText(`${jwt}.${jwt}`)).toBe('eyJ….eyJ…');
    // one pattern for the whole JWT backtracks from every eyJ of a run without a dot (~30 ms here)
    for (const hostile of ['eyJ'.repeat(5400), `${'eyJa'.repeat(4000)}.`]) {
      let fastest = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        scrubText(hostile);
        fastest = Math.min(fastest, performance.now() - t0);
      }
      expect(fastest).toBeLessThan(3);
    }
  });
});

for (const e of eng.list) {
  describe.skipIf(e.skip)(`no secret in an event's user agent (${e.name})`, () => {
    let s: TestServer;
    beforeAll(async () => {
      s = await e.startServer({ config: { rateLimitPerKey: 0 } });
    });
    afterAll(() => s?.close());

    it('cuts a Breeze key and a JWT in the user agent, keeping the rest of it', async () => {
      const owner = await s.seedKey({ email: `ua-secret-${e.name}@example.com` });
      const jwt = `eyJhbGciOiJFZDI1NTE5In0.eyJzdWIiOiJ1c3JfMDEifQ.${'A'.repeat(86)}`;
      const made = await s.app.inject({
        method: 'POST',
        url: '/v1/api-keys',
        headers: {
          'xi-api-key': owner.apiKey,
          'user-agent': `deploy-bot/1.0 key=${owner.apiKey} token=${jwt} (ci)`,
        },
        payload: { name: 'ua' },
      });
      expect(made.statusCode).toBe(201);
      const keyId = (made.json() as Json).key_id as string;

      const res = await s.app.inject({
        url: `/v1/audit-events?key_id=${keyId}&action=key.created`,
        headers: { 'xi-api-key': owner.apiKey },
      });
      expect(res.statusCode).toBe(200);
      const [event] = (res.json() as { data: Json[] }).data;
      const ua = event?.user_agent as string;
      expect(res.body).not.toContain(owner.apiKey);
      expect(res.body).not.toContain(jwt);
      expect(res.body).not.toContain(owner.apiKey.slice(12));
      expect(ua).toBe(`deploy-bot/1.0 key=${owner.apiKey.slice(0, 12)}… token=eyJ… (ci)`);
    });

    it('still cuts a key the 512-character limit would have cut in two', async () => {
      const owner = await s.seedKey({ email: `ua-long-${e.name}@example.com` });
      const ua = `${'x'.repeat(480)} ${owner.apiKey}`;
      const made = await s.app.inject({
        method: 'POST',
        url: '/v1/api-keys',
        headers: { 'xi-api-key': owner.apiKey, 'user-agent': ua },
        payload: { name: 'ua-long' },
      });
      expect(made.statusCode).toBe(201);
      const res = await s.app.inject({
        url: `/v1/audit-events?key_id=${(made.json() as Json).key_id}&action=key.created`,
        headers: { 'xi-api-key': owner.apiKey },
      });
      // 480 + 1 + 12 = 493 characters: what was cut to its prefix fits whole, nothing past it
      expect((res.json() as { data: Json[] }).data[0]?.user_agent).toBe(
        `${'x'.repeat(480)} ${owner.apiKey.slice(0, 12)}…`,
      );
    });
  });
}
