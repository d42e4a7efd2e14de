import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import { OutboxMailer } from '../../src/server/mail/outbox.js';
import { OPERATIONS } from '../../src/server/openapi.js';
import { startServer } from '../../src/server/serve.js';
import { openStore } from '../../src/server/store/index.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const REDOCLY = join(root, 'node_modules', '@redocly', 'cli', 'bin', 'cli.js');
const SPECTRAL = join(root, 'node_modules', '@stoplight', 'spectral-cli', 'dist', 'index.js');
// the linters talk to nobody: no telemetry, no update check
const LINT_ENV = {
  ...process.env,
  REDOCLY_TELEMETRY: 'off',
  REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true',
  DO_NOT_TRACK: '1',
  NO_COLOR: '1',
};

interface OpenApiDoc {
  servers?: { url: string }[];
  info: { license?: { name: string } };
  paths: Record<string, Record<string, { operationId?: string; responses: Record<string, unknown> }>>;
}

/**
 * Runs Redocly (`recommended`) and Spectral (`spectral:oas`) on `doc`; returns every problem of
 * any severity, one line each (`linter rule severity path: message`).
 */
async function lint(doc: unknown): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'breeze-openapi-'));
  try {
    writeFileSync(join(dir, 'openapi.json'), JSON.stringify(doc, null, 2));
    writeFileSync(join(dir, 'redocly.yaml'), 'extends:\n  - recommended\n');
    writeFileSync(join(dir, 'spectral.yaml'), 'extends: ["spectral:oas"]\n');
    const opts = { cwd: dir, env: LINT_ENV, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 };
    const redocly = run(
      process.execPath,
      [REDOCLY, 'lint', 'openapi.json', '--config', 'redocly.yaml', '--format=json'],
      opts,
    ).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' })); // exit 1 on errors
    const spectral = run(
      process.execPath,
      [
        SPECTRAL,
        'lint',
        'openapi.json',
        '--ruleset',
        'spectral.yaml',
        '--format',
        'json',
        '--output',
        'spectral.json',
        '--fail-severity',
        'hint',
      ],
      opts,
    ).catch(() => undefined); // exit 1 on any problem: read the report either way
    const [redoclyOut] = await Promise.all([redocly, spectral]);
    const r = JSON.parse(redoclyOut.stdout) as {
      totals: { errors: number; warnings: number };
      problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
    };
    const s = JSON.parse(readFileSync(join(dir, 'spectral.json'), 'utf8')) as {
      code: string;
      severity: number;
      message: string;
      path: string[];
    }[];
    const problems = [
      ...r.problems.map((p) => `redocly ${p.ruleId} ${p.severity} ${p.location[0]?.pointer}: ${p.message}`),
      ...s.map((p) => `spectral ${p.code} ${p.severity} ${p.path.join('.')}: ${p.message}`),
    ];
    // a crashed linter leaves no report: JSON.parse or readFileSync throws instead of "no problems"
    expect(r.totals).toBeDefined();
    return problems;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function operations(doc: OpenApiDoc) {
  return Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({ method, path, op })),
  );
}

describe('GET /openapi.json', () => {
  let server: TestServer;
  let doc: OpenApiDoc;

  beforeAll(async () => {
    server = await startTestServer({ config: { publicUrl: 'https://breeze.test/' } });
    const res = await server.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    doc = res.json();
  });
  afterAll(() => server.close());

  it('is lint-clean under Redocly recommended and Spectral spectral:oas (no error, no warning)', async () => {
    expect(await lint(doc)).toEqual([]);
  }, 120_000);

  it('names the public URL as its server, an operationId and a 4xx on every operation, and a license', () => {
    expect(doc.servers).toEqual([{ url: 'https://breeze.test', description: 'This server' }]);
    expect(doc.info.license?.name).toBe('MIT');
    const ops = operations(doc);
    expect(ops.length).toBeGreaterThanOrEqual(15);
    for (const { method, path, op } of ops) {
      expect(op.operationId, `${method} ${path}`).toMatch(/^[a-z][A-Za-z]+$/);
      expect(
        Object.keys(op.responses).some((c) => c.startsWith('4')),
        `${method} ${path}`,
      ).toBe(true);
    }
    const ids = ops.map((o) => o.op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('lists the statuses the rate-limited and filtered routes really answer', () => {
    const responses = (method: string, path: string) =>
      Object.keys(operations(doc).find((o) => o.method === method && o.path === path)?.op.responses ?? {});
    expect(responses('post', '/v1/cli/logins')).toContain('429');
    expect(responses('post', '/v1/cli/logins/{login_id}/exchange')).toEqual(
      expect.arrayContaining(['200', '400', '429']),
    );
    // an unknown project_id or org_id filter
    expect(responses('get', '/v1/api-keys')).toContain('404');
  });

  it('has no stale rows in the operation table (every row names a documented route)', () => {
    const documented = new Set(
      operations(doc).map(
        ({ method, path }) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`,
      ),
    );
    expect(Object.keys(OPERATIONS).filter((k) => !documented.has(k))).toEqual([]);
  });

  it('marks the routes that need no credential as such', () => {
    const security = (path: string, method: string) =>
      (doc.paths[path]?.[method] as { security?: unknown } | undefined)?.security;
    expect(security('/healthz', 'get')).toEqual([]);
    expect(security('/auth/code', 'post')).toEqual([]);
    expect(security('/.well-known/jwks.json', 'get')).toEqual([]);
    // the document-wide default (an API key or a bearer token) applies to the others
    expect(security('/v1/me', 'get')).toBeUndefined();
  });
});

describe('OpenAPI document of a listening server', () => {
  it('names the URL it listens on when no public URL is configured', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'breeze-openapi-serve-'));
    const server = await startServer({ host: '127.0.0.1', port: 0, dataDir });
    try {
      const res = await fetch(`${server.url}/openapi.json`);
      const body = (await res.json()) as OpenApiDoc;
      expect(body.servers?.[0]?.url).toBe(server.url);
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    } finally {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('a route added later', () => {
  it('without a row in the operation table fails the lint (missing operationId)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'breeze-openapi-new-'));
    const store = await openStore({ dataDir });
    const app = await buildApp({ store, mailer: new OutboxMailer(join(dataDir, 'outbox')) });
    try {
      app.get(
        '/v1/widgets',
        {
          schema: {
            summary: 'List widgets',
            tags: ['account'],
            response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } },
          },
          config: { auth: 'required' },
        },
        async () => ({ ok: true }),
      );
      const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as OpenApiDoc;
      const problems = await lint(doc);
      expect(problems.some((p) => p.startsWith('redocly operation-operationId'))).toBe(true);
      expect(problems.some((p) => p.startsWith('spectral operation-operationId'))).toBe(true);
      expect(problems.every((p) => p.includes('widgets'))).toBe(true);
    } finally {
      await app.close();
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
