import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Dist } from '../lib/dist.js';
import { figure } from '../lib/report.js';
import type { Section, SectionContext } from '../lib/section.js';
import { median, sleep } from '../lib/stats.js';

const EMAIL = 'bench-dashboard@example.com';
const KEYS = 10_000;

interface InjectAnswer {
  statusCode: number;
  body: string;
  headers: Record<string, string | string[] | number | undefined>;
}
/** What the section calls of the built app: app.inject (light-my-request), as the tests do. */
interface InjectableApp {
  inject(req: {
    method?: string;
    url: string;
    headers?: Record<string, string>;
    payload?: string;
  }): Promise<InjectAnswer>;
  breeze: {
    keys: {
      mint(
        opts: {
          userId: string;
          name: string;
          scopes: string[];
          expiresAt: string | null;
          createdVia: string;
        },
        tx?: unknown,
      ): Promise<{ row: { id: string; org_id: string | null } }>;
    };
  };
  close(): Promise<void>;
}

interface UsageTx {
  usage: { add(rows: { key_id: string; hour: string; requests: number; rejected: number }[]): Promise<void> };
}

function cookiesOf(res: InjectAnswer, jar: Map<string, string>): void {
  const raw = res.headers['set-cookie'];
  for (const c of raw === undefined ? [] : Array.isArray(raw) ? raw : [String(raw)]) {
    const pair = c.split(';')[0] ?? '';
    const eq = pair.indexOf('=');
    if (eq > 0) jar.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
}

function hidden(body: string, name: string): string {
  return new RegExp(`name="${name}" value="([^"]*)"`).exec(body)?.[1] ?? '';
}

function latestCode(outbox: string): string | undefined {
  if (!existsSync(outbox)) return undefined;
  const files = readdirSync(outbox)
    .filter((f) => f.endsWith('.eml'))
    .sort();
  const last = files[files.length - 1];
  if (!last) return undefined;
  return /^Subject: Your Breeze code: ([0-9A-Z]{8})\r?$/m.exec(readFileSync(join(outbox, last), 'utf8'))?.[1];
}

/** Signs in through the pages (mailed code from the dev outbox); returns the Cookie header. */
async function signIn(app: InjectableApp, outbox: string): Promise<string> {
  const jar = new Map<string, string>();
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const form = { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://127.0.0.1:4455' };
  const page = await app.inject({ url: '/login' });
  cookiesOf(page, jar);
  const sent = await app.inject({
    method: 'POST',
    url: '/login',
    headers: { ...form, cookie: cookie() },
    payload: new URLSearchParams({ email: EMAIL, csrf: hidden(page.body, 'csrf'), next: '/keys' }).toString(),
  });
  let code: string | undefined;
  for (let i = 0; i < 500 && !code; i++) {
    code = latestCode(outbox);
    if (!code) await sleep(10);
  }
  if (!code) throw new Error('no sign-in code was mailed');
  const done = await app.inject({
    method: 'POST',
    url: '/login/code',
    headers: { ...form, cookie: cookie() },
    payload: new URLSearchParams({
      code,
      code_id: hidden(sent.body, 'code_id'),
      email: EMAIL,
      csrf: hidden(sent.body, 'csrf'),
      next: '/keys',
    }).toString(),
  });
  if (done.statusCode !== 303) throw new Error(`sign-in answered ${done.statusCode}`);
  cookiesOf(done, jar);
  return cookie();
}

async function measure(ctx: SectionContext): Promise<void> {
  const dist: Dist = await ctx.dist();
  const root = mkdtempSync(join(tmpdir(), 'breeze-bench-dashboard-'));
  ctx.cleanup.add(() => rmSync(root, { recursive: true, force: true }));
  const store = await dist.store.openStore({ dataDir: root });
  ctx.cleanup.add(() => store.close());
  const outbox = join(root, 'outbox');
  const app = (await dist.app.buildApp({
    store,
    mailer: new dist.outbox.OutboxMailer(outbox),
    config: { publicUrl: 'http://127.0.0.1:4455', pepper: dist.config.resolvePepper(root) },
  })) as unknown as InjectableApp;
  ctx.cleanup.add(() => app.close());

  const user = await store.users.ensure(EMAIL);
  let t = Date.now();
  let last: { id: string; org_id: string | null } | undefined;
  const newest: string[] = [];
  await store.transaction(async (tx) => {
    for (let i = 0; i < KEYS; i++) {
      ({ row: last } = await app.breeze.keys.mint(
        {
          userId: user.id,
          name: `service ${i}`,
          scopes: ['read', 'write'],
          expiresAt: null,
          createdVia: 'api',
        },
        tx,
      ));
      if (i >= KEYS - 50) newest.push(last.id);
    }
  });
  ctx.log(`minted ${KEYS.toLocaleString('en-US')} keys in one organization in ${Date.now() - t} ms`);
  const cookie = await signIn(app, outbox);
  const orgId = last?.org_id ?? '';
  const keyId = last?.id ?? '';
  // usage of the key shown: every hour of the last 30 days counted, and the 50 keys of the first
  // page busy over the last day (the 24 h column); the audit log holds the 10,000 key.created events
  const hourMs = 3_600_000;
  const nowHour = Date.now() - (Date.now() % hourMs);
  const usage: { key_id: string; hour: string; requests: number; rejected: number }[] = [];
  for (let h = 0; h < 30 * 24; h++) {
    usage.push({
      key_id: keyId,
      hour: new Date(nowHour - h * hourMs).toISOString(),
      requests: 100 + (h % 37),
      rejected: h % 5,
    });
  }
  for (const id of newest) {
    if (id === keyId) continue;
    for (let h = 0; h < 24; h++) {
      usage.push({
        key_id: id,
        hour: new Date(nowHour - h * hourMs).toISOString(),
        requests: 7,
        rejected: 0,
      });
    }
  }
  // (the store's usage repo; the bench's StoreLike names only what every section needs)
  await store.transaction((tx) => (tx as UsageTx).usage.add(usage));
  const firstPage = await app.inject({ url: '/keys', headers: { cookie } });
  const next = /href="([^"]+)" rel="next"/.exec(firstPage.body)?.[1]?.replaceAll('&amp;', '&') ?? '';
  if (!next) throw new Error('the key list has no next page');

  const pages: { id: string; label: string; url: string }[] = [
    { id: 'keys', label: '/keys (first page of 50)', url: '/keys' },
    { id: 'keys_page2', label: '/keys (second page, cursor)', url: next },
    {
      id: 'keys_disabled',
      label: '/keys?status=disabled (none match)',
      url: `/keys?org_id=${orgId}&status=disabled`,
    },
    { id: 'key_new', label: '/keys/new', url: '/keys/new' },
    { id: 'key', label: '/keys/:key_id (usage: 7 days by hour, events)', url: `/keys/${keyId}` },
    { id: 'key_30d', label: '/keys/:key_id?usage=30d (30 days by day)', url: `/keys/${keyId}?usage=30d` },
    { id: 'key_delete', label: '/keys/:key_id/delete (confirmation)', url: `/keys/${keyId}/delete` },
    { id: 'account', label: '/account', url: '/account' },
    { id: 'org', label: '/orgs/:org_id (with webhooks, OIDC trusts)', url: `/orgs/${orgId}` },
    { id: 'audit', label: '/audit (first page of 50, 10,000 events)', url: `/audit?org_id=${orgId}` },
    {
      id: 'audit_filtered',
      label: '/audit?action=key.deleted&since=7d (none match)',
      url: `/audit?org_id=${orgId}&action=key.deleted&since=7d`,
    },
    { id: 'audit_key', label: '/audit?key_id= (one key)', url: `/audit?org_id=${orgId}&key_id=${keyId}` },
  ];
  const runs = ctx.opts.rounds > 1 ? 200 : 40;
  t = Date.now();
  // warm up every page (JIT, statement caches), then interleave the pages run by run
  for (const p of pages) {
    for (let i = 0; i < 10; i++) {
      const res = await app.inject({ url: p.url, headers: { cookie } });
      if (res.statusCode !== 200) throw new Error(`${p.url} answered ${res.statusCode}`);
    }
  }
  const times = new Map<string, number[]>(pages.map((p) => [p.id, []]));
  for (let i = 0; i < runs; i++) {
    for (const p of pages) {
      const start = performance.now();
      const res = await app.inject({ url: p.url, headers: { cookie } });
      const ms = performance.now() - start;
      if (res.statusCode !== 200) throw new Error(`${p.url} answered ${res.statusCode}`);
      times.get(p.id)?.push(ms);
    }
  }
  ctx.log(`${runs} renders of each of ${pages.length} pages in ${Date.now() - t} ms`);
  for (const p of pages) {
    const ms = [...(times.get(p.id) ?? [])].sort((a, b) => a - b);
    const p95 = ms[Math.min(ms.length - 1, Math.floor(ms.length * 0.95))] ?? Number.NaN;
    ctx.addRun({ page: p.id, ms });
    ctx.addFigure(
      figure({
        id: `dashboard.${p.id}.median_ms`,
        label: `${p.label}, ${KEYS.toLocaleString('en-US')} keys: median (p95 ${p95.toFixed(1)} ms, max ${(ms[ms.length - 1] ?? 0).toFixed(1)} ms)`,
        value: median(ms),
        unit: 'ms',
        target: { op: '<', value: 50 },
        note: 'app.inject with a session cookie, SQLite; every request answered 200',
      }),
    );
  }
}

/** `dashboard`: every page's server time with 10,000 keys in the organization (issue 17). */
export const dashboardSection: Section = {
  id: 'dashboard',
  title: 'Dashboard pages: server time with 10,000 keys in the organization (SQLite)',
  budgetSeconds: 240,
  run: measure,
};
