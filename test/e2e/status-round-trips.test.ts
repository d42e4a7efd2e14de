/**
 * `breeze status` against a remote server costs one round trip, not two: the key's details
 * (`GET /v1/api-keys/:key_id`, for its prefix and expiry) are asked for alongside `GET /v1/me`,
 * with the key id the profile saved at login. A server on 127.0.0.1 holds its `/v1/me` answer
 * until the key request has arrived (3 s at most), so a CLI that waits for `me` first is seen.
 * (The requests leave together: either may arrive first.)
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../src/core/api-key.js';
import { runCli, tempConfigDir } from '../helpers/cli.js';

const KEY = generateApiKey();
const KEY_ID = 'key_01JSTATUSKEY000000000000';
const OTHER_KEY_ID = 'key_01JOTHERKEY0000000000000';
const ENV = { BREEZE_STORAGE: 'file', DBUS_SESSION_BUS_ADDRESS: undefined };

const keyObject = (id: string) => ({
  key_id: id,
  name: 'k',
  prefix: KEY.slice(0, 12),
  scopes: ['read'],
  status: 'active',
  created_at: '2026-01-01T00:00:00.000Z',
  expires_at: '2099-01-01T00:00:00.000Z',
  last_used_at: null,
  disabled_at: null,
  rotated_from: null,
  created_via: 'api',
});

let server: Server;
let url = '';
/** the key id `/v1/me` names */
let meKeyId = KEY_ID;
/** hold `/v1/me` until a key request arrives */
let hold = false;
let heldFor = 0;
/** answer everything with 401, as for a key revoked since login */
let refuse = false;
let requests: string[] = [];
let keySeen = false;
let keyArrived: (() => void) | undefined;

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = req.url ?? '';
  requests.push(`${req.method} ${path}`);
  if (refuse)
    return json(res, 401, {
      error: { code: 'AUTH_REQUIRED', message: 'Missing, malformed, deleted or disabled API key.' },
    });
  if (path === '/v1/me') {
    if (hold) {
      const t0 = Date.now();
      await new Promise<void>((resolve) => {
        if (keySeen) return resolve();
        keyArrived = resolve;
        setTimeout(resolve, 3000);
      });
      heldFor = Date.now() - t0;
    }
    return json(res, 200, {
      user: { id: 'usr_01JSTATUSUSER00000000000', email: 'me@example.com' },
      auth: { type: 'api_key', key_id: meKeyId, scopes: ['read'] },
    });
  }
  const key = /^\/v1\/api-keys\/(key_[A-Z0-9]+)$/.exec(path)?.[1];
  if (key) {
    keySeen = true;
    keyArrived?.();
    return json(res, 200, keyObject(key));
  }
  return json(res, 404, { error: { code: 'NOT_FOUND', message: 'no such route' } });
}

beforeAll(async () => {
  server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('breeze status against a remote server', { timeout: 60_000 }, () => {
  async function loggedIn() {
    const cfg = tempConfigDir();
    hold = false;
    refuse = false;
    meKeyId = KEY_ID;
    const login = await runCli(['--server', url, 'login', '--with-key'], {
      configDir: cfg.dir,
      env: ENV,
      input: `${KEY}\n`,
    });
    expect(login.code, login.stderr).toBe(0);
    requests = [];
    heldFor = 0;
    keySeen = false;
    keyArrived = undefined;
    return cfg;
  }

  it('asks for the key alongside /v1/me: one round trip', async () => {
    const cfg = await loggedIn();
    try {
      hold = true;
      const r = await runCli(['--server', url, 'status', '--json'], { configDir: cfg.dir, env: ENV });
      expect(r.code, r.stderr).toBe(0);
      // the key request reached the server while /v1/me was still unanswered
      expect(heldFor).toBeLessThan(2500);
      expect(requests.sort()).toEqual([`GET /v1/api-keys/${KEY_ID}`, 'GET /v1/me']);
      const report = JSON.parse(r.stdout) as { key_id: string; expires_at: string; valid: boolean };
      expect(report).toMatchObject({ valid: true, key_id: KEY_ID, expires_at: '2099-01-01T00:00:00.000Z' });
    } finally {
      cfg.cleanup();
    }
  });

  it('when /v1/me names another key than the saved one, that key is the one shown', async () => {
    const cfg = await loggedIn();
    try {
      meKeyId = OTHER_KEY_ID;
      const r = await runCli(['--server', url, 'status', '--json'], { configDir: cfg.dir, env: ENV });
      expect(r.code, r.stderr).toBe(0);
      expect(requests).toContain(`GET /v1/api-keys/${OTHER_KEY_ID}`);
      expect((JSON.parse(r.stdout) as { key_id: string }).key_id).toBe(OTHER_KEY_ID);
    } finally {
      cfg.cleanup();
    }
  });

  it('a key refused since login: status says so, and the early key request fails quietly', async () => {
    const cfg = await loggedIn();
    try {
      refuse = true;
      const r = await runCli(['--server', url, 'status', '--json'], { configDir: cfg.dir, env: ENV });
      expect(requests.sort()).toEqual([`GET /v1/api-keys/${KEY_ID}`, 'GET /v1/me']);
      expect((JSON.parse(r.stdout) as { valid: boolean }).valid).toBe(false);
      expect(r.stderr).not.toMatch(/unhandled|at .*\.(c?js|ts):\d+/i);
    } finally {
      cfg.cleanup();
    }
  });
});
