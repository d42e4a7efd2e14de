/**
 * examples/voices-api runs as a process, as its README says, and accepts real Breeze keys in
 * `xi-api-key` and `x-api-key`: once on its own (it starts a throw-away `breeze serve` and mints its
 * demo keys through the public API), once against a Breeze we serve (BREEZE_SERVER + BREEZE_VERIFY_KEY).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeKey } from '../../packages/verify/test/fake-breeze.js';
import { cliEnv } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const EXAMPLE = join(import.meta.dirname, '..', '..', 'examples', 'voices-api', 'server.mjs');
const children: ChildProcess[] = [];
const servers: TestServer[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null) {
      c.kill('SIGTERM');
      await Promise.race([once(c, 'exit'), new Promise((r) => setTimeout(r, 5000))]);
      if (c.exitCode === null) c.kill('SIGKILL');
    }
  }
  for (const s of servers.splice(0)) await s.close();
});

/** Starts the example; resolves with its URL and everything it printed so far. */
async function runExample(env: Record<string, string | undefined>): Promise<{ url: string; stdout: string }> {
  const child = spawn(process.execPath, [EXAMPLE], {
    env: cliEnv(undefined, { PORT: '0', LOG_LEVEL: 'silent', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`example did not start:\n${stdout}\n${stderr}`)), 45_000);
    child.stdout?.on('data', (d: string) => {
      stdout += d;
      const m = /voices-api listening on (http:\/\/\S+)/.exec(stdout);
      if (m && (env.BREEZE_SERVER || /curl -i /.test(stdout))) {
        clearTimeout(timer);
        resolve({ url: m[1]!, stdout });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`example exited with ${code}:\n${stdout}\n${stderr}`));
    });
  });
}

async function expectVoicesFor(url: string, key: string, keyId?: string) {
  for (const [header, value] of [
    ['xi-api-key', key],
    ['x-api-key', key],
    ['authorization', `Bearer ${key}`],
  ] as const) {
    const res = await fetch(`${url}/v1/voices`, { headers: { [header]: value } });
    expect(res.status, header).toBe(200);
    const body = (await res.json()) as { voices: Array<{ voice_id: string; name: string }> };
    expect(body.voices.length).toBeGreaterThan(0);
    expect(body.voices[0]).toMatchObject({ voice_id: expect.any(String), name: expect.any(String) });
    if (keyId) expect(res.headers.get('x-breeze-api-key-id')).toBe(keyId);
    else expect(res.headers.get('x-breeze-api-key-id')).toMatch(/^key_/);
  }
  const none = await fetch(`${url}/v1/voices`);
  expect(none.status).toBe(401);
  expect(((await none.json()) as { error: { code: string } }).error.code).toBe('AUTH_REQUIRED');
  const wrong = await fetch(`${url}/v1/voices`, { headers: { 'xi-api-key': makeKey() } });
  expect(wrong.status).toBe(401);
  expect((await fetch(`${url}/healthz`)).status).toBe(200);
}

describe('examples/voices-api', () => {
  it('runs on its own against a throw-away breeze serve and takes the key it prints', {
    timeout: 90_000,
  }, async () => {
    const { url, stdout } = await runExample({ BREEZE_SERVER: undefined, BREEZE_VERIFY_KEY: undefined });
    const key = /demo Breeze key[^:]*: (brz_[0-9A-Za-z]{46})/.exec(stdout)?.[1];
    expect(key, stdout).toBeDefined();
    // the four lines its README shows
    expect(stdout).toContain(`curl -H 'xi-api-key: ${key}' ${url}/v1/voices`);
    expect(stdout).toContain(`curl -H 'x-api-key: ${key}'  ${url}/v1/voices`);
    expect(stdout).toContain(`curl -H 'Authorization: Bearer ${key}' ${url}/v1/voices`);
    expect(stdout).toContain(`curl -i ${url}/v1/voices`);
    await expectVoicesFor(url, key!);
  });

  it('runs against a served Breeze with BREEZE_SERVER and BREEZE_VERIFY_KEY', {
    timeout: 60_000,
  }, async () => {
    const srv = await startTestServer();
    servers.push(srv);
    const server = await srv.app.listen({ host: '127.0.0.1', port: 0 });
    const { apiKey: verifyKey } = await srv.seedKey({ scopes: ['read', 'verify'] });
    const caller = await srv.seedKey({ scopes: ['read'] });
    const { url, stdout } = await runExample({ BREEZE_SERVER: server, BREEZE_VERIFY_KEY: verifyKey });
    expect(stdout).not.toContain(verifyKey);
    await expectVoicesFor(url, caller.apiKey, caller.keyId);
  });
});
