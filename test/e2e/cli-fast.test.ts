/**
 * The fast entry of `breeze token`, `breeze env` and `breeze --version` (bin/breeze.js -> the
 * CommonJS bundle dist/cli/bin.cjs): what it must not load, and how it leaves through a closed pipe.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  constants,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../src/core/api-key.js';
import { BIN, cliEnv, runCli, tempConfigDir } from '../helpers/cli.js';

const PRELOAD = resolve(import.meta.dirname, '../fixtures/module-list.cjs');
let tmp: ReturnType<typeof tempConfigDir>;
const key = generateApiKey();

beforeAll(() => {
  tmp = tempConfigDir();
  mkdirSync(tmp.dir, { recursive: true, mode: 0o700 });
  const profile = {
    server: 'embedded',
    key_id: 'key_fast',
    prefix: key.slice(0, 12),
    email: 'a@example.com',
  };
  writeFileSync(
    join(tmp.dir, 'config.json'),
    JSON.stringify({ version: 1, profiles: { default: { ...profile, storage: 'file' } } }),
    { mode: 0o600 },
  );
  writeFileSync(
    join(tmp.dir, 'credentials.json'),
    JSON.stringify({ version: 1, credentials: { 'default@embedded': key } }),
    { mode: 0o600 },
  );
});

afterAll(() => tmp?.cleanup());

describe('fast entry', () => {
  it('token and env print the stored key without loading crypto, zlib, child_process, os, streams or the ESM loader', async () => {
    const token = await runCli(['token'], { configDir: tmp.dir });
    expect(token.code, token.stderr).toBe(0);
    expect(token.stdout).toBe(`${key}\n`);
    const env = await runCli(['env'], { configDir: tmp.dir });
    expect(env.stdout).toBe(`export BREEZE_API_KEY='${key}'\nexport BREEZE_API_KEY_ID='key_fast'\n`);

    for (const args of [['token'], ['env'], ['env', '--format', 'fish'], ['--version']]) {
      const list = join(tmp.dir, '..', 'modules.txt');
      const r = spawnSync(process.execPath, ['-r', PRELOAD, BIN, ...args], {
        env: cliEnv(tmp.dir, { BREEZE_TEST_MODULE_LIST: list }),
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      const loaded = readFileSync(list, 'utf8').split('\n');
      const heavy = loaded.filter((m) =>
        // stream, net, tty: process.stdout / process.stderr were touched (the fast path writes to
        // the file descriptors); abort_controller: the Interrupts of the context were built
        /^NativeModule (crypto|zlib|child_process|os|stream|net|tty|internal\/abort_controller|internal\/modules\/esm\/translators)$/.test(
          m,
        ),
      );
      expect(heavy, `breeze ${args.join(' ')}`).toEqual([]);
    }
  });

  it('token, env and --version print no EPIPE error when the reader has gone (breeze token | head -c 0)', () => {
    for (let i = 0; i < 5; i++) {
      for (const cmd of ['token', 'env', 'env --format json', '--version']) {
        const r = spawnSync(
          'bash',
          ['-c', `"${process.execPath}" "${BIN}" ${cmd} | head -c 0; exit "\${PIPESTATUS[0]}"`],
          { env: cliEnv(tmp.dir), encoding: 'utf8' },
        );
        expect(r.stderr, `breeze ${cmd}`).toBe('');
        expect(r.status, `breeze ${cmd}`).toBe(0);
      }
    }
  });

  const hasPython = spawnSync('python3', ['-c', '0']).status === 0;

  it('writes whole output to a file', () => {
    const file = join(tmp.dir, '..', 'out.txt');
    const toFile = spawnSync('bash', ['-c', `"${process.execPath}" "${BIN}" env --format json > "${file}"`], {
      env: cliEnv(tmp.dir),
      encoding: 'utf8',
    });
    expect(toFile.status, toFile.stderr).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
      BREEZE_API_KEY: key,
      BREEZE_API_KEY_ID: 'key_fast',
    });
  });

  it.skipIf(!hasPython)(
    'waits on a non-blocking pipe that is full when it starts (EAGAIN) until the reader takes the output',
    async () => {
      // A FIFO filled up before breeze starts, and non-blocking (O_NONBLOCK belongs to the open file,
      // which the child shares): its write gets EAGAIN until we read. libuv makes a child's stdio
      // blocking when it spawns it, so python sets O_NONBLOCK again right before it execs breeze.
      const fifo = join(tmp.dir, '..', 'fifo');
      spawnSync('mkfifo', [fifo]);
      const rfd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
      const wfd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
      const chunk = Buffer.alloc(4096, 'x');
      let filled = 0;
      for (;;) {
        try {
          filled += writeSync(wfd, chunk);
        } catch (err) {
          expect((err as NodeJS.ErrnoException).code).toBe('EAGAIN');
          break;
        }
      }
      const child = spawn(
        'python3',
        [
          '-c',
          'import os, sys; os.set_blocking(1, False); os.execv(sys.argv[1], sys.argv[1:])',
          process.execPath,
          BIN,
          'token',
        ],
        { env: cliEnv(tmp.dir), stdio: ['ignore', wfd, 'pipe'] },
      );
      closeSync(wfd);
      let stderr = '';
      child.stderr?.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
      });
      let code: number | null | undefined;
      const exited = new Promise<void>((res) =>
        child.on('close', (c) => {
          code = c;
          res();
        }),
      );
      // It cannot finish before we read: it must still be waiting (a version that gives up on
      // EAGAIN exits 1 with "cannot write to stdout" well within this time).
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
      expect(code, stderr).toBeUndefined();
      const chunks: Buffer[] = [];
      const buf = Buffer.alloc(65536);
      for (;;) {
        let n = 0;
        try {
          n = readSync(rfd, buf);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        }
        if (n > 0) chunks.push(Buffer.from(buf.subarray(0, n)));
        else if (code !== undefined) break;
        else await new Promise((r) => setTimeout(r, 10));
      }
      closeSync(rfd);
      const out = Buffer.concat(chunks);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(out.length).toBe(filled + key.length + 1);
      expect(out.subarray(filled).toString()).toBe(`${key}\n`);
    },
  );

  it('anything else goes to the full program: unknown flags are usage errors, errors keep their exit codes', async () => {
    const bad = await runCli(['token', '--bogus'], { configDir: tmp.dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown option/i);
    const none = await runCli(['token', '--profile', 'other'], { configDir: tmp.dir });
    expect(none.code).toBe(3);
    expect(none.stderr).toMatch(/^Error: Not logged in \(profile "other", the embedded server\)\.\n/);
    expect(none.stdout).toBe('');
  });
});
