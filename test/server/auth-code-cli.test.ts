/**
 * `runEmailLogin` in-process: a CliContext with a temp config dir and scripted answers to its
 * prompts (the interactive path a spawned, non-TTY CLI cannot take), against a real server on port
 * 0 that mails through a real SMTP server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoginOptions } from '../../src/cli/commands/login.js';
import { createContext } from '../../src/cli/context.js';
import { EXIT, UserError } from '../../src/cli/errors.js';
import { findPending, runEmailLogin } from '../../src/cli/login/email.js';
import type { Output } from '../../src/cli/ui/output.js';
import type { Prompts } from '../../src/cli/ui/prompts.js';
import { type RunningServer, startServer } from '../../src/server/serve.js';
import { codeFromSubject, startSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';

let smtp: TestSmtpServer;
let server: RunningServer;
const dirs: string[] = [];
beforeAll(async () => {
  smtp = await startSmtpServer();
  const dataDir = mkdtempSync(join(tmpdir(), 'breeze-email-cli-'));
  dirs.push(dataDir);
  server = await startServer({ host: '127.0.0.1', port: 0, dataDir, smtpUrl: smtp.url, logger: false });
});
afterAll(async () => {
  await server?.close();
  await smtp?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Prompts answered by `answer(message)`; records what was asked. */
function scriptedPrompts(answer: (message: string) => Promise<string>) {
  const asked: string[] = [];
  const prompts: Prompts = {
    interactive: true,
    async confirm() {
      throw new Error('unexpected confirm');
    },
    async input(message, { validate }) {
      asked.push(message);
      const value = await answer(message);
      const verdict = validate?.(value) ?? true;
      if (verdict !== true) throw new Error(`the prompt would refuse ${JSON.stringify(value)}: ${verdict}`);
      return value;
    },
    async password() {
      throw new Error('unexpected password prompt');
    },
  };
  return { prompts, asked };
}

async function context(prompts: Prompts) {
  const parent = mkdtempSync(join(tmpdir(), 'breeze-email-cli-cfg-'));
  dirs.push(parent);
  const stderr: string[] = [];
  const output: Output = {
    data: () => {},
    json: () => {},
    info: (m) => void stderr.push(m),
    warn: (m) => void stderr.push(m),
    success: (m) => void stderr.push(m),
  };
  const ctx = await createContext(
    { configDir: join(parent, 'config'), server: server.url },
    { env: {}, output, prompts },
  );
  return { ctx, stderr };
}

const opts = (o: Partial<LoginOptions> = {}): LoginOptions => ({ browser: false, email: true, ...o });
let seq = 0;
const email = () => `cli.${process.pid}.${++seq}@example.com`;

describe('runEmailLogin, interactive', () => {
  it('asks for the address, then the code (again after a typo), and returns the new key', async () => {
    const addr = email();
    let codeAnswers = 0;
    const { prompts, asked } = scriptedPrompts(async (message) => {
      if (/email/i.test(message)) return addr;
      const code = codeFromSubject((await smtp.waitForMail((m) => m.envelopeTo.includes(addr))).subject);
      codeAnswers++;
      return codeAnswers === 1 ? (code[0] === 'A' ? 'B' : 'A') + code.slice(1) : code.toLowerCase();
    });
    const { ctx, stderr } = await context(prompts);
    const result = await runEmailLogin(opts(), ctx);
    expect(asked).toEqual(['Email address', 'Code from the mail', 'Code from the mail']);
    expect(stderr.join('\n')).toMatch(/4 tries left/);
    expect(result.user.email).toBe(addr);
    expect(result.key).toMatchObject({ created_via: 'email_code', scopes: ['read', 'write', 'admin'] });
    expect(result.apiKey.startsWith(result.key.prefix)).toBe(true);
    const me = await fetch(`${server.url}/v1/me`, { headers: { 'xi-api-key': result.apiKey } });
    expect(((await me.json()) as { user: { email: string } }).user.email).toBe(addr);
    // nothing pending is left behind by an interactive run
    expect(findPending(ctx)).toBeUndefined();
  });

  it('gives up after the 5th wrong code with exit 3', async () => {
    const addr = email();
    const { prompts, asked } = scriptedPrompts(async () => 'ZZZZZZZZ');
    const { ctx } = await context(prompts);
    const err = await runEmailLogin(opts({ email: addr }), ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(EXIT.NOT_AUTHENTICATED);
    expect(asked).toHaveLength(5);
  });

  it('refuses a malformed address as a usage error before calling the server', async () => {
    const { prompts } = scriptedPrompts(async () => 'x');
    const { ctx } = await context(prompts);
    const err = await runEmailLogin(opts({ email: 'not an address' }), ctx).catch((e: unknown) => e);
    expect((err as UserError).exitCode).toBe(EXIT.USAGE);
  });
});
