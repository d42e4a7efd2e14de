/**
 * A 429 from the server (API.md: `RATE_LIMITED` with `Retry-After`), as the built CLI handles it: a
 * short wait is waited out with a notice on stderr; a long one fails at once with exit 1 (CLI.md
 * "Exit codes": failure) and says when to try again, instead of hanging a script or CI job silently.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../src/core/api-key.js';
import { runCli, tempConfigDir } from '../helpers/cli.js';
import { apiError, type FakeServer, type Handler, startFakeServer } from '../helpers/fake-server.js';

let fake: FakeServer;
let routes: Record<string, Handler> = {};
let cfg: ReturnType<typeof tempConfigDir>;
const KEY = generateApiKey();

const limited = (retryAfterS: number) => ({
  status: 429,
  body: apiError('RATE_LIMITED', 'Too many requests for this key.', 429),
  headers: { 'retry-after': String(retryAfterS) },
});

beforeAll(async () => {
  fake = await startFakeServer({ routes: () => routes });
});
afterAll(async () => {
  await fake.close();
});
afterEach(() => {
  cfg?.cleanup();
});

function cli(args: string[]) {
  cfg = tempConfigDir();
  return runCli(['--server', fake.url, ...args], {
    configDir: cfg.dir,
    env: { BREEZE_API_KEY: KEY, BREEZE_STORAGE: 'file', DBUS_SESSION_BUS_ADDRESS: undefined },
    timeoutMs: 40_000,
  });
}

describe('a rate-limited CLI', () => {
  it('a long Retry-After fails at once: exit 1, RATE_LIMITED on stdout with --json, when to retry on stderr', async () => {
    let calls = 0;
    routes = {
      'GET /v1/api-keys': () => {
        calls++;
        return limited(60);
      },
    };
    const started = Date.now();
    const r = await cli(['keys', 'list', '--json']);
    const took = Date.now() - started;
    expect(r.code, r.stderr).toBe(1);
    expect(took, 'waited out a 60 s Retry-After').toBeLessThan(15_000);
    expect(calls).toBe(1);
    expect(JSON.parse(r.stdout).error.code).toBe('RATE_LIMITED');
    expect(r.stderr).toMatch(/try again in 60 ?s/);
    expect(r.stderr).not.toContain(KEY);
  }, 45_000);

  it('a short Retry-After is waited out, with a notice on stderr, then the command succeeds', async () => {
    let calls = 0;
    routes = {
      'GET /v1/api-keys': () => {
        calls++;
        return calls === 1 ? limited(1) : { status: 200, body: { data: [], next_cursor: null } };
      },
    };
    const r = await cli(['keys', 'list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(calls).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({ data: [] });
    expect(r.stderr).toMatch(/Rate limited by the server \(429\): retrying in 1 s/);
  }, 45_000);
});
