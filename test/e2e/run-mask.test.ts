/**
 * `breeze run --mask` end to end (issue 15): the built CLI runs a child that prints its key in
 * pieces and encoded; the output never shows it, in pipe mode (CI logs) and on a pseudo-terminal.
 * No server is needed: BREEZE_API_KEY and BREEZE_SERVER come from the environment.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../src/core/api-key.js';
import { BIN, cliEnv, collect, spawnCli, tempConfigDir, waitForOutput } from '../helpers/cli.js';
import { ptyAvailable, spawnInPty } from '../helpers/pty.js';
import { requirePart } from '../helpers/require.js';

const KEY = generateApiKey();
let dir: string;
let t: ReturnType<typeof tempConfigDir>;
// (with its id given, nothing asks the server for it: nothing listens there)
const env = { BREEZE_API_KEY: KEY, BREEZE_API_KEY_ID: 'key_mask', BREEZE_SERVER: 'http://127.0.0.1:9' };

/** A child that writes its key split over writes with pauses, plus base64 / base64url forms, on both streams. */
const SPLIT = `
const k = process.env.BREEZE_API_KEY;
const pause = () => new Promise((r) => setTimeout(r, 40));
const w = async (stream, s) => { await new Promise((r) => stream.write(s, r)); await pause(); };
(async () => {
  await w(process.stdout, 'plain=' + k.slice(0, 3));
  await w(process.stdout, k.slice(3, 20));
  await w(process.stdout, k.slice(20) + '\\n');
  const basic = Buffer.from('ci-user:' + k).toString('base64');
  await w(process.stdout, 'Authorization: Basic ' + basic.slice(0, 15));
  await w(process.stdout, basic.slice(15) + '\\n');
  for (const pre of ['', 'a', 'ab']) {
    const url = Buffer.from(pre + k + '??>').toString('base64url');
    await w(process.stderr, 'b64url=' + url.slice(0, 9));
    await w(process.stderr, url.slice(9) + '\\n');
  }
  await w(process.stderr, 'std=' + Buffer.from(k).toString('base64') + '\\n');
  await w(process.stderr, 'query=' + encodeURIComponent(k) + '\\n');
  process.exitCode = 7;
})();
`;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'breeze-mask-'));
  t = tempConfigDir();
  writeFileSync(join(dir, 'split.js'), SPLIT);
  writeFileSync(
    join(dir, 'progress.js'),
    `process.stdout.write('\\r[====      ] 40%');
process.stdout.write('\\r[=====     ] 50% br');
process.stdin.once('data', () => { process.stdout.write('z_ is only a prefix\\n'); process.exit(0); });`,
  );
  writeFileSync(
    join(dir, 'term.js'),
    `process.on('SIGTERM', () => { console.log('child got SIGTERM'); process.exit(42); });
console.log('ready'); setInterval(() => {}, 1000);`,
  );
  writeFileSync(
    join(dir, 'tty.js'),
    `const k = process.env.BREEZE_API_KEY;
console.log('stdout-tty=' + Boolean(process.stdout.isTTY) + ' stdin-tty=' + Boolean(process.stdin.isTTY));
process.stdout.write('\\x1b[31mred\\x1b[0m key=' + k.slice(0, 25));
setTimeout(() => {
  process.stdout.write(k.slice(25) + '\\n');
  process.stderr.write('err=' + Buffer.from(k).toString('base64') + '\\n');
  process.stdout.write('Name? ');
  process.stdin.setEncoding('utf8');
  process.stdin.once('data', (d) => { console.log('hi ' + d.trim()); process.exit(3); });
}, 50);`,
  );
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  t.cleanup();
});

describe('breeze run --mask (pipes)', () => {
  it('masks the key split across writes and its base64/base64url/percent forms on stdout and stderr; passes the exit code', async () => {
    const r = await collect(
      spawnCli(['run', '--mask', '--', process.execPath, join(dir, 'split.js')], { configDir: t.dir, env }),
    );
    expect(r.code, r.stderr).toBe(7);
    const all = r.stdout + r.stderr;
    expect(all).not.toContain(KEY);
    expect(all).not.toContain(KEY.slice(4, 30));
    expect(r.stdout).toContain('plain=[BREEZE_API_KEY]\n');
    expect(r.stdout).toMatch(/Authorization: Basic \S*\[BREEZE_API_KEY\]/);
    expect(r.stderr.match(/b64url=\S*\[BREEZE_API_KEY\]/g)).toHaveLength(3);
    expect(r.stderr).toMatch(/std=\[BREEZE_API_KEY\]/);
    expect(r.stderr).toContain('query=[BREEZE_API_KEY]');
    // nothing of the encoded key survives beyond a character at each end
    for (const line of all.split('\n'))
      expect(line.replace(/\[BREEZE_API_KEY\]/g, '').length).toBeLessThan(40);
  });

  it('is on by default when CI is set, off with --no-mask, off by default outside CI', async () => {
    const script = ['sh', '-c', 'echo "k=$BREEZE_API_KEY"'];
    const ci = await collect(
      spawnCli(['run', '--', ...script], { configDir: t.dir, env: { ...env, CI: 'true' } }),
    );
    expect(ci.stdout).toBe('k=[BREEZE_API_KEY]\n');
    const off = await collect(
      spawnCli(['run', '--no-mask', '--', ...script], { configDir: t.dir, env: { ...env, CI: 'true' } }),
    );
    expect(off.stdout).toBe(`k=${KEY}\n`);
    const local = await collect(spawnCli(['run', '--', ...script], { configDir: t.dir, env }));
    expect(local.stdout).toBe(`k=${KEY}\n`);
  });

  it('a line-less progress bar shows at once; only a possible key prefix is held back', async () => {
    const child = spawnCli(['run', '--mask', '--', process.execPath, join(dir, 'progress.js')], {
      configDir: t.dir,
      env,
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    // the child waits for stdin before it goes on: only output already passed through can be seen
    await waitForOutput(child, /50% /, 'stdout');
    expect(out).not.toContain('br');
    child.stdin!.write('go\n');
    const r = await collect(child, {});
    expect(r.code).toBe(0);
    expect(out).toContain('50% brz_ is only a prefix\n');
  });

  it('passes SIGTERM to the child and its exit code back', async () => {
    const child = spawnCli(['run', '--mask', '--', process.execPath, join(dir, 'term.js')], {
      configDir: t.dir,
      env,
    });
    const done = collect(child, {});
    await waitForOutput(child, /ready/, 'stdout');
    child.kill('SIGTERM');
    const r = await done;
    expect(r.stdout).toContain('child got SIGTERM');
    expect(r.code).toBe(42);
  });

  it('a closed reader ends it as unmasked: `run --mask -- yes | head -1` exits with the SIGPIPE code', async () => {
    const script = `"${process.execPath}" "${BIN}" run --mask -- yes | head -1; echo "status=\${PIPESTATUS[0]}" >&2`;
    const child = spawn('bash', ['-c', script], {
      env: cliEnv(t.dir, env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const r = await collect(child, { timeoutMs: 15_000 });
    expect(r.signal, 'breeze kept masking into a closed pipe').toBeNull();
    expect(r.stdout).toBe('y\n');
    expect(r.stderr).toContain('status=141');
  });

  it('a missing command is exit 127', async () => {
    const r = await collect(
      spawnCli(['run', '--mask', '--', 'no-such-command-xyz'], { configDir: t.dir, env }),
    );
    expect(r.code).toBe(127);
    expect(r.stderr).toContain('Command not found');
  });
});

const noPty = requirePart('python3 pty', ptyAvailable(), 'python3 with the pty module is not installed');

describe.skipIf(noPty)('breeze run --mask on a terminal', () => {
  it('the child gets a terminal (colours, a prompt) and the key is masked across writes', async () => {
    const p = spawnInPty(
      process.execPath,
      [BIN, 'run', '--mask', '--', process.execPath, join(dir, 'tty.js')],
      {
        env: cliEnv(t.dir, env),
      },
    );
    await p.waitFor(/Name\? /);
    p.write('bob\r');
    const code = await p.exited;
    const out = p.output();
    expect(code, out).toBe(3);
    expect(out).toContain('stdout-tty=true stdin-tty=true');
    expect(out).toContain('\x1b[31mred\x1b[0m key=[BREEZE_API_KEY]');
    expect(out).toContain('err=[BREEZE_API_KEY]');
    expect(out).toContain('hi bob');
    expect(out).not.toContain(KEY);
    expect(out).not.toContain(KEY.slice(0, 25));
  });
});
