/**
 * `breeze scan` end to end (issue 16): the built CLI against a real server (HTTP on port 0, SQLite)
 * in a temp git repository holding a live key, a dead well-formed key, look-alikes (bad checksum,
 * wrong length), an ignored file, a binary, a symbolic link out of the tree and a key only in
 * history. Exact findings, statuses and exit codes; no byte of a key beyond its prefix anywhere in
 * stdout or stderr; a reported key refused within 1 s; the rules and the pre-commit hook.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../src/core/api-key.js';
import { BASE62 } from '../../src/core/base62.js';
import { type CliResult, runCli, spawnCli, tempConfigDir } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** Length of the block `breeze scan --install-hook` adds, as found in `text` (0 when absent). */
const hookBlockLength = (text: string) => {
  const end = text.indexOf('# <<< breeze scan\n');
  const begin = text.indexOf('# >>> breeze scan');
  return begin < 0 || end < 0 ? 0 : end + '# <<< breeze scan\n'.length - begin;
};

const badChecksum = (key: string) =>
  key.slice(0, -1) + BASE62[(BASE62.indexOf(key.at(-1) as string) + 1) % 62];

let server: TestServer;
let url: string;
let cfg: ReturnType<typeof tempConfigDir>;
let root: string;
let repo: string;
const keys = {} as Record<'live' | 'dead' | 'history' | 'ignored' | 'binary' | 'outside', string>;
let liveId = '';
let commits: { first: string; second: string };
/** every secret part of every key the tree holds, look-alikes included: none may be printed */
let secrets: string[] = [];

function git(cwd: string, ...args: string[]): string {
  const r = spawnSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 't',
      GIT_AUTHOR_EMAIL: 't@example.com',
      GIT_COMMITTER_NAME: 't',
      GIT_COMMITTER_EMAIL: 't@example.com',
      GIT_CONFIG_NOSYSTEM: '1',
      HOME: root,
    },
  });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

function breeze(args: string[], opts: { cwd?: string; input?: string } = {}): Promise<CliResult> {
  return runCli(['--server', url, ...args], {
    configDir: cfg.dir,
    cwd: opts.cwd ?? repo,
    input: opts.input,
    env: { HOME: root, BREEZE_STORAGE: 'file', DBUS_SESSION_BUS_ADDRESS: undefined },
  });
}

/** Fails when any secret part of a key (everything after its 12-character prefix) was printed. */
function expectNoKeyPrinted(r: CliResult): void {
  const bytes = r.stdout + r.stderr;
  for (const s of secrets) expect(bytes.includes(s), `printed ${s.slice(0, 12)}…`).toBe(false);
}

const prefix = (k: string) => k.slice(0, 12);

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'breeze-scan-e2e-'));
  cfg = tempConfigDir();
  server = await startTestServer({ config: { rateLimitPerKey: 0 } });
  url = await server.app.listen({ port: 0, host: '127.0.0.1' });

  const live = await server.seedKey({ email: 'scan@example.com', name: 'live one' });
  const dead = await server.seedKey({ email: 'scan@example.com', name: 'dead one' });
  await server.store.keys.update(dead.keyId, { disabled_at: new Date().toISOString() });
  const history = await server.seedKey({ email: 'scan@example.com', name: 'in history' });
  keys.live = live.apiKey;
  liveId = live.keyId;
  keys.dead = dead.apiKey;
  keys.history = history.apiKey;
  keys.ignored = (await server.seedKey({ email: 'scan@example.com' })).apiKey;
  keys.binary = (await server.seedKey({ email: 'scan@example.com' })).apiKey;
  keys.outside = (await server.seedKey({ email: 'scan@example.com' })).apiKey;
  const lookAlikes = [badChecksum(generateApiKey()), `${generateApiKey()}Z`, generateApiKey().slice(0, 49)];
  secrets = [...Object.values(keys), ...lookAlikes].map((k) => k.slice(12));

  repo = join(root, 'repo');
  mkdirSync(join(repo, 'src'), { recursive: true });
  git(repo, 'init', '-q', '-b', 'main');
  writeFileSync(join(repo, 'config.env'), `API_KEY=${keys.history}\n`);
  git(repo, 'add', '.');
  git(repo, 'commit', '-q', '-m', 'first');
  const first = git(repo, 'rev-parse', 'HEAD');
  rmSync(join(repo, 'config.env'));
  writeFileSync(join(repo, 'src', 'app.ts'), `// app\nconst x = 1;\nconst key = "${keys.live}";\n`);
  writeFileSync(
    join(repo, 'notes.md'),
    `# notes\nold key: ${keys.dead}\nbad checksum: ${lookAlikes[0]}\ntoo long: ${lookAlikes[1]}\ntoo short: ${lookAlikes[2]}\n`,
  );
  writeFileSync(join(repo, '.gitignore'), 'ignored.env\n');
  writeFileSync(join(repo, 'ignored.env'), `KEY=${keys.ignored}\n`);
  writeFileSync(join(repo, 'blob.bin'), Buffer.concat([Buffer.from([0, 1, 2, 0]), Buffer.from(keys.binary)]));
  writeFileSync(join(root, 'outside.txt'), `${keys.outside}\n`);
  symlinkSync(join(root, 'outside.txt'), join(repo, 'link.txt'));
  git(repo, 'add', '.');
  git(repo, 'commit', '-q', '-m', 'second');
  commits = { first, second: git(repo, 'rev-parse', 'HEAD') };
});

afterAll(async () => {
  await server?.close();
  cfg?.cleanup();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('breeze scan (files)', () => {
  it('finds the live and the dead key, nothing else, and exits 1', async () => {
    const r = await breeze(['scan', '--json']);
    expect(r.code, r.stderr).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({
      findings: [
        { file: 'notes.md', line: 2, prefix: prefix(keys.dead), status: 'not_live' },
        { file: 'src/app.ts', line: 3, prefix: prefix(keys.live), status: 'live' },
      ],
    });
    expectNoKeyPrinted(r);
  });

  it('prints file:line, prefix and status for people, with a summary on stderr', async () => {
    const r = await breeze(['scan', '--verbose']);
    expect(r.code).toBe(1);
    expect(r.stdout.trim().split('\n')).toEqual([
      `notes.md:2  ${prefix(keys.dead)}…  not_live`,
      `src/app.ts:3  ${prefix(keys.live)}…  live`,
    ]);
    expect(r.stderr).toMatch(/2 Breeze keys in \d+ files .*\(1 live, 1 not live\)/);
    expect(r.stderr).toContain('skipped 1 binary');
    expectNoKeyPrinted(r);
  });

  it('--offline asks nothing: every key unchecked, exit 0', async () => {
    const r = await breeze(['scan', '--offline', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).findings.map((f: { status: string }) => f.status)).toEqual([
      'unchecked',
      'unchecked',
    ]);
    expectNoKeyPrinted(r);
  });

  it('a file named twice, or also inside a named directory, is reported once', async () => {
    const r = await breeze([
      'scan',
      '--offline',
      '--json',
      'notes.md',
      './notes.md',
      '.',
      'src',
      'src/app.ts',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(
      JSON.parse(r.stdout).findings.map((f: { file: string; line: number }) => `${f.file}:${f.line}`),
    ).toEqual(['notes.md:2', 'src/app.ts:3']);
    expectNoKeyPrinted(r);
  });

  it('--git-history or --install-hook outside a repository is a usage error (exit 2), not exit 1', async () => {
    for (const flag of ['--git-history', '--staged', '--install-hook']) {
      const r = await breeze(['scan', '--offline', flag], { cwd: root });
      expect(r.code, `${flag}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain('Not a git repository');
    }
  });

  it('a path that does not exist is a usage error (exit 2), not the "live key found" exit 1', async () => {
    const r = await breeze(['scan', '--offline', '--json', 'no-such-file.txt']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('No such file or directory: no-such-file.txt');
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'USAGE', exit_code: 2 } });
  });

  it('a dead key alone exits 0; a named file through a symbolic link is read', async () => {
    const r = await breeze(['scan', '--json', 'notes.md']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).findings).toEqual([
      { file: 'notes.md', line: 2, prefix: prefix(keys.dead), status: 'not_live' },
    ]);
    const linked = await breeze(['scan', '--offline', '--json', 'link.txt']);
    expect(JSON.parse(linked.stdout).findings).toEqual([
      { file: 'link.txt', line: 1, prefix: prefix(keys.outside), status: 'unchecked' },
    ]);
    expectNoKeyPrinted(linked);
  });

  it('a server that cannot be reached leaves keys unchecked, says so, exits 0', async () => {
    const r = await runCli(['--server', 'http://127.0.0.1:9', 'scan', '--json', '--verbose'], {
      configDir: cfg.dir,
      cwd: repo,
      env: { HOME: root, BREEZE_STORAGE: 'file' },
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).findings.map((f: { status: string }) => f.status)).toEqual([
      'unchecked',
      'unchecked',
    ]);
    expect(r.stderr).toMatch(/Keys not checked: Cannot reach http:\/\/127\.0\.0\.1:9/);
    expectNoKeyPrinted(r);
  });

  it('outside a git repository still honours .gitignore', async () => {
    const plain = join(root, 'plain');
    mkdirSync(join(plain, 'logs'), { recursive: true });
    writeFileSync(join(plain, '.gitignore'), 'logs/\n');
    writeFileSync(join(plain, 'a.txt'), `x\n${keys.dead}\n`);
    writeFileSync(join(plain, 'logs', 'b.txt'), `${keys.live}\n`);
    const r = await breeze(['scan', '--offline', '--json', plain], { cwd: root });
    expect(JSON.parse(r.stdout).findings).toEqual([
      { file: join(plain, 'a.txt'), line: 2, prefix: prefix(keys.dead), status: 'unchecked' },
    ]);
  });

  it('--stdin (and "-") reads a pipe', async () => {
    const input = `line one\n${badChecksum(keys.live)}\nsecret=${keys.dead} and ${keys.live}\n`;
    const r = await breeze(['scan', '--stdin', '--json'], { input });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).findings).toEqual([
      { file: '-', line: 3, prefix: prefix(keys.dead), status: 'not_live' },
      { file: '-', line: 3, prefix: prefix(keys.live), status: 'live' },
    ]);
    const dash = await breeze(['scan', '-', '--offline'], { input: `${keys.dead}\n` });
    expect(dash.stdout.trim()).toBe(`-:1  ${prefix(keys.dead)}…  unchecked`);
    expectNoKeyPrinted(r);
    expectNoKeyPrinted(dash);
  });
});

describe('breeze scan in a repository whose .breeze.json names the server', () => {
  // a cloned repository must not collect the keys it holds: checking a key sends it to the server
  let trap: Server;
  let trapUrl: string;
  let connections = 0;
  let linked: string;

  beforeAll(async () => {
    trap = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((done) => trap.listen(0, '127.0.0.1', done));
    trapUrl = `http://127.0.0.1:${(trap.address() as { port: number }).port}`;
    linked = join(root, 'linked');
    mkdirSync(linked);
    writeFileSync(join(linked, '.breeze.json'), JSON.stringify({ server: trapUrl }));
    writeFileSync(join(linked, 'app.env'), `KEY=${keys.live}\nOLD=${keys.dead}\n`);
  });
  afterAll(() => new Promise<void>((done) => (trap ? trap.close(() => done()) : done())));

  const scanLinked = (args: string[], env: Record<string, string | undefined> = {}) =>
    runCli(['scan', ...args], {
      configDir: cfg.dir,
      cwd: linked,
      env: { HOME: root, BREEZE_STORAGE: 'file', DBUS_SESSION_BUS_ADDRESS: undefined, ...env },
    });

  it('checks nothing there (not even with --report): unchecked, a warning naming the file and the way to confirm', async () => {
    for (const args of [['--json'], ['--report', '--json']]) {
      const r = await scanLinked(args);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).findings).toEqual([
        { file: 'app.env', line: 1, prefix: prefix(keys.live), status: 'unchecked' },
        { file: 'app.env', line: 2, prefix: prefix(keys.dead), status: 'unchecked' },
      ]);
      expect(r.stderr).toContain(
        `the server ${trapUrl} is named by ${join(linked, '.breeze.json')}, not by you`,
      );
      expect(r.stderr).toContain(`pass --server ${trapUrl} or set BREEZE_SERVER=${trapUrl}`);
      expectNoKeyPrinted(r);
    }
    expect(connections).toBe(0);
  });

  it('with BREEZE_SERVER (or --server) set by the user, that server is asked', async () => {
    const r = await scanLinked(['--json'], { BREEZE_SERVER: url });
    expect(r.code, r.stderr).toBe(1);
    expect(JSON.parse(r.stdout).findings.map((f: { status: string }) => f.status)).toEqual([
      'live',
      'not_live',
    ]);
    expect(r.stderr).not.toContain('not by you');
    const flag = await runCli(['--server', url, 'scan', '--json'], {
      configDir: cfg.dir,
      cwd: linked,
      env: { HOME: root, BREEZE_STORAGE: 'file' },
    });
    expect(flag.code, flag.stderr).toBe(1);
    expect(connections).toBe(0);
  });

  it('a profile the user logged in to that same server counts as their choice', async () => {
    const mine = join(root, 'linked-mine');
    mkdirSync(mine);
    writeFileSync(join(mine, '.breeze.json'), JSON.stringify({ server: url }));
    writeFileSync(join(mine, 'app.env'), `KEY=${keys.live}\n`);
    const own = tempConfigDir();
    try {
      const scanMine = () =>
        runCli(['scan', '--json'], {
          configDir: own.dir,
          cwd: mine,
          env: { HOME: root, BREEZE_STORAGE: 'file', DBUS_SESSION_BUS_ADDRESS: undefined },
        });
      const before = await scanMine();
      expect(JSON.parse(before.stdout).findings[0].status).toBe('unchecked');
      const profile = { server: url, key_id: 'key_x', prefix: 'brz_xxxxxxxx', email: 'me@example.com' };
      mkdirSync(own.dir, { recursive: true });
      writeFileSync(
        join(own.dir, 'config.json'),
        JSON.stringify({ version: 1, profiles: { default: { ...profile, storage: 'file' } } }),
      );
      const after = await scanMine();
      expect(after.code, after.stderr).toBe(1);
      expect(JSON.parse(after.stdout).findings[0].status).toBe('live');
      expect(after.stderr).not.toContain('not by you');
    } finally {
      own.cleanup();
    }
  });
});

describe('breeze scan --git-history', () => {
  it("finds keys in every commit's added lines, with the commit, including one only in history", async () => {
    const r = await breeze(['scan', '--git-history', '--json']);
    expect(r.code).toBe(1);
    const findings = JSON.parse(r.stdout).findings;
    expect(findings).toEqual(
      expect.arrayContaining([
        { file: 'config.env', line: 1, prefix: prefix(keys.history), status: 'live', commit: commits.first },
        { file: 'notes.md', line: 2, prefix: prefix(keys.dead), status: 'not_live', commit: commits.second },
        { file: 'src/app.ts', line: 3, prefix: prefix(keys.live), status: 'live', commit: commits.second },
      ]),
    );
    // the ignored file was never committed; the binary's diff has no lines; the link's target is outside
    expect(findings).toHaveLength(3);
    expectNoKeyPrinted(r);
  });
});

describe('breeze scan --report', () => {
  it('reports the live key: status "reported", exit 1, and the key is refused within 1 s', async () => {
    const before = await fetch(`${url}/v1/me`, { headers: { 'xi-api-key': keys.live } });
    expect(before.status).toBe(200);
    const r = await breeze(['scan', '--report', '--json', '--verbose', 'src', 'notes.md']);
    const done = Date.now();
    expect(r.code, r.stderr).toBe(1);
    expect(JSON.parse(r.stdout).findings).toEqual([
      { file: 'notes.md', line: 2, prefix: prefix(keys.dead), status: 'not_live' },
      { file: join('src', 'app.ts'), line: 3, prefix: prefix(keys.live), status: 'reported' },
    ]);
    // --verbose traced the report request (body included), with the key cut to its prefix
    expect(r.stderr).toContain('POST http://127.0.0.1');
    expect(r.stderr).toContain(`${prefix(keys.live)}…[redacted]`);
    expectNoKeyPrinted(r);
    let status = 200;
    while (Date.now() - done < 1000) {
      status = (await fetch(`${url}/v1/me`, { headers: { 'xi-api-key': keys.live } })).status;
      if (status === 401) break;
    }
    expect(status).toBe(401);
    expect((await server.store.keys.get(liveId))?.disabled_at).not.toBeNull();
    // now it is not live any more
    const again = await breeze(['scan', '--json', 'src']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).findings[0].status).toBe('not_live');
  });
});

describe('breeze scan --rules', () => {
  it('prints a gitleaks rule whose regex (RE2 subset) matches real keys and not look-alikes of shape', async () => {
    const r = await breeze(['scan', '--rules', 'gitleaks']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('[[rules]]');
    expect(r.stdout).toMatch(/^keywords = \["brz_"\]$/m);
    expect(r.stdout).toMatch(/^entropy = \d/m);
    expect(r.stdout).toMatch(/^secretGroup = 1$/m);
    const regex = /^regex = '''(.*)'''$/m.exec(r.stdout)?.[1] ?? '';
    // RE2 has no lookaround, backreferences, possessive or atomic groups
    expect(regex).not.toMatch(/\(\?[=!<>]|\\[1-9]|[*+?}]\+|\(\?>/);
    // and Python's re and JavaScript agree on it
    const py = spawnSync('python3', ['-c', 'import re,sys; re.compile(sys.argv[1])', regex]);
    expect(py.status, String(py.stderr)).toBe(0);
    const re = new RegExp(regex);
    const real = generateApiKey();
    for (const text of [real, `KEY=${real}\n`, `"${real}"`, `x${real}`])
      expect(re.exec(text)?.[1]).toBe(real);
    for (const text of [
      real.slice(0, 49),
      `${real}a`,
      real.replace('brz_', 'brx_'),
      `${real.slice(0, 20)}-${real.slice(21)}`,
    ]) {
      expect(re.test(text), text).toBe(false);
    }
  });

  it('prints a trufflehog detector and a GitHub custom pattern', async () => {
    const t = await breeze(['scan', '--rules', 'trufflehog']);
    expect(t.stdout).toMatch(/^detectors:\n {2}- name: BreezeAPIKey$/m);
    expect(t.stdout).toContain("key: '(brz_[0-9A-Za-z]{46})(?:[^0-9A-Za-z]|$)'");
    const g = await breeze(['scan', '--rules', 'github']);
    expect(g.stdout).toMatch(/^Secret format: +brz_\[0-9A-Za-z\]\{46\}$/m);
    // its test string has the shape but not the checksum: breeze scan ignores it
    const s = await breeze(['scan', '--offline', '--stdin', '--json'], { input: g.stdout });
    expect(JSON.parse(s.stdout).findings).toEqual([]);
    expect((await breeze(['scan', '--rules', 'semgrep'])).code).toBe(2);
  });
});

describe('breeze scan --install-hook', () => {
  function newRepo(name: string): string {
    const dir = join(root, name);
    mkdirSync(dir);
    git(dir, 'init', '-q', '-b', 'main');
    return dir;
  }
  const commit = (dir: string) =>
    spawnSync('git', ['commit', '-q', '-m', 'x'], {
      cwd: dir,
      encoding: 'utf8',
      env: {
        ...process.env,
        HOME: root,
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_AUTHOR_NAME: 't',
        GIT_AUTHOR_EMAIL: 't@example.com',
        GIT_COMMITTER_NAME: 't',
        GIT_COMMITTER_EMAIL: 't@example.com',
      },
    });

  it('refuses a commit adding a key (even a dead one) and lets others through', async () => {
    const dir = newRepo('hooked');
    const r = await breeze(['scan', '--install-hook'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('Installed pre-commit hook');
    writeFileSync(join(dir, 'ok.txt'), 'nothing here\n');
    git(dir, 'add', 'ok.txt');
    expect(commit(dir).status).toBe(0);
    writeFileSync(join(dir, 'ok.txt'), `nothing here\nkey: ${keys.dead}\n`);
    git(dir, 'add', 'ok.txt');
    const refused = commit(dir);
    expect(refused.status).not.toBe(0);
    expect(refused.stdout + refused.stderr).toContain(`ok.txt:2  ${prefix(keys.dead)}…  unchecked`);
    expectNoKeyPrinted({ code: 0, signal: null, stdout: refused.stdout, stderr: refused.stderr });
    // a look-alike passes
    writeFileSync(join(dir, 'ok.txt'), `nothing here\nkey: ${badChecksum(keys.dead)}\n`);
    git(dir, 'add', 'ok.txt');
    expect(commit(dir).status).toBe(0);
    // twice: unchanged
    const again = await breeze(['scan', '--install-hook'], { cwd: dir });
    expect(again.stderr).toContain('Already in');
  });

  it('an install killed half-way leaves the existing hook whole: as it was, or with the block added', async () => {
    const dir = newRepo('interrupted');
    const hook = join(dir, '.git', 'hooks', 'pre-commit');
    // a long hook, so that rewriting it takes a while
    const original = `#!/bin/sh\n${'# a line of the team hook, long enough to take some time\n'.repeat(400_000)}exit 0\n`;
    writeFileSync(hook, original);
    chmodSync(hook, 0o755);
    const child = spawnCli(['--server', url, 'scan', '--install-hook'], {
      configDir: cfg.dir,
      cwd: dir,
      env: { HOME: root, BREEZE_STORAGE: 'file', DBUS_SESSION_BUS_ADDRESS: undefined },
    });
    const exited = new Promise((r) => child.once('exit', r));
    // SIGKILL the moment the hook file changes at all (or when the CLI is done)
    const tick = new Int32Array(new SharedArrayBuffer(4));
    const deadline = Date.now() + 60_000;
    while (statSync(hook).size === original.length && child.exitCode === null && Date.now() < deadline) {
      Atomics.wait(tick, 0, 0, 1);
      await new Promise((r) => setImmediate(r));
    }
    child.kill('SIGKILL');
    await exited;
    const text = readFileSync(hook, 'utf8');
    if (text !== original) {
      expect(text.length).toBe(original.length + hookBlockLength(text));
      expect(text.startsWith('#!/bin/sh\n# >>> breeze scan')).toBe(true);
      expect(text.endsWith(original.slice('#!/bin/sh\n'.length))).toBe(true);
    }
  });

  it('a hook that is a symbolic link (as hook managers install them) stays one: its target gets the block', async () => {
    const dir = newRepo('symlinked-hook');
    const target = join(dir, 'team-hook.sh');
    writeFileSync(target, '#!/bin/sh\nexit 0\n');
    chmodSync(target, 0o755);
    const hook = join(dir, '.git', 'hooks', 'pre-commit');
    symlinkSync(target, hook);
    const r = await breeze(['scan', '--install-hook'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(lstatSync(hook).isSymbolicLink()).toBe(true);
    expect(readFileSync(target, 'utf8')).toMatch(
      /^#!\/bin\/sh\n# >>> breeze scan[\s\S]*# <<< breeze scan\nexit 0\n$/,
    );
    expect(statSync(target).mode & 0o777).toBe(0o755);
  });

  it('chains an existing shell hook and refuses to touch another kind', async () => {
    const dir = newRepo('chained');
    const hook = join(dir, '.git', 'hooks', 'pre-commit');
    writeFileSync(hook, `#!/usr/bin/env bash\necho ran > "${join(dir, 'marker')}"\n`);
    chmodSync(hook, 0o755);
    const r = await breeze(['scan', '--install-hook'], { cwd: dir });
    expect(r.stderr).toContain('Added to the existing pre-commit hook');
    const text = readFileSync(hook, 'utf8');
    expect(text.startsWith('#!/usr/bin/env bash\n# >>> breeze scan')).toBe(true);
    expect(text).toContain('echo ran');
    writeFileSync(join(dir, 'a.txt'), `${keys.dead}\n`);
    git(dir, 'add', 'a.txt');
    expect(commit(dir).status).not.toBe(0);
    expect(existsSync(join(dir, 'marker'))).toBe(false);
    writeFileSync(join(dir, 'a.txt'), 'clean\n');
    git(dir, 'add', 'a.txt');
    expect(commit(dir).status).toBe(0);
    expect(existsSync(join(dir, 'marker'))).toBe(true);

    const py = newRepo('python-hook');
    const pyHook = join(py, '.git', 'hooks', 'pre-commit');
    writeFileSync(pyHook, '#!/usr/bin/env python3\nprint("hi")\n');
    const refused = await breeze(['scan', '--install-hook'], { cwd: py });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('is not a shell script');
    expect(readFileSync(pyHook, 'utf8')).toBe('#!/usr/bin/env python3\nprint("hi")\n');
  });
});
