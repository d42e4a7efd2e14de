import { Command, InvalidArgumentError, Option } from 'commander';
import { type AuditEventInfo, type AuditPage, type AuditQuery, listAuditEvents } from '../../client/audit.js';
import type { BreezeClient } from '../../client/client.js';
import { ApiError, NetworkError } from '../../client/errors.js';
import { isId } from '../../client/validate.js';
import type { CliContext } from '../context.js';
import { EXIT, UsageError } from '../errors.js';
import { type TrustedLine, terminalJson, terminalLine, trustedLine } from '../ui/terminal-text.js';
import type { CommandHost } from './host.js';

export interface AuditOptions {
  key?: string;
  action?: string;
  since?: string;
  follow?: boolean;
  org?: string;
  limit?: number;
  /** seconds between polls with --follow */
  interval?: number;
}

const ACTION_SHAPE = /^[a-z][a-z_]*\.[a-z][a-z_]*$/;
const DURATION = /^\d{1,6}(s|m|h|d|w)$/;
/** With --follow: events up to this much older than the newest seen are asked for again (late commits). */
const FOLLOW_OVERLAP_MS = 60_000;
/** With --follow: pages read per poll at most (200 events each). */
const FOLLOW_MAX_PAGES = 10;

function checkSince(since: string): string {
  if (DURATION.test(since)) return since;
  if (/^\d{4}-\d{2}-\d{2}T/.test(since) && !Number.isNaN(Date.parse(since))) return since;
  throw new UsageError(`Invalid --since "${since}".`, {
    hint: 'Give a duration such as 30m, 24h or 7d, or an RFC 3339 time such as 2026-01-31T00:00:00Z.',
  });
}

/** The query `breeze audit` sends, from its options (checked here: a typo is exit 2, not a 400). */
export function auditQuery(opts: AuditOptions, orgId: string | undefined): AuditQuery {
  if (opts.key !== undefined && !isId(opts.key)) {
    throw new UsageError(`Invalid --key "${opts.key}": expected a key id (key_...).`, {
      hint: 'Run "breeze keys list --all" to see key ids.',
    });
  }
  if (opts.action !== undefined && !ACTION_SHAPE.test(opts.action)) {
    throw new UsageError(`Invalid --action "${opts.action}".`, {
      hint: 'Actions look like key.created, key.rotated, member.joined, user.signed_in.',
    });
  }
  return {
    ...(orgId !== undefined ? { org_id: orgId } : {}),
    ...(opts.action !== undefined ? { action: opts.action } : {}),
    ...(opts.key !== undefined ? { key_id: opts.key } : {}),
    ...(opts.since !== undefined ? { since: checkSince(opts.since) } : {}),
    limit: opts.limit ?? 50,
  };
}

/** `--org <id|name>`, else the profile's current organization, else (undefined) the key's own. */
async function orgIdFor(ctx: CliContext, opts: AuditOptions): Promise<string | undefined> {
  const { findOrg, teamSession } = await import('../teams.js');
  const t = await teamSession(ctx);
  if (opts.org !== undefined) return (await findOrg(t, opts.org)).id;
  const saved = t.session.source === 'env' ? undefined : t.session.saved?.org_id;
  return saved !== undefined && isId(saved) ? saved : undefined;
}

/** The server's 400 for a filter, in words naming the option (its message is generic). */
function explainRefusal(err: unknown, opts: AuditOptions): unknown {
  if (!(err instanceof ApiError) || err.code !== 'VALIDATION_FAILED') return err;
  const fields = Array.isArray(err.details)
    ? err.details.map((d) => String((d as { field?: unknown }).field ?? ''))
    : [];
  if (fields.includes('querystring.action')) {
    return new UsageError(`The server knows no action "${opts.action}".`, {
      hint: 'Actions look like key.created, key.rotated, key.disabled, member.joined, user.signed_in (PLATFORM.md).',
    });
  }
  if (fields.includes('querystring.since')) {
    return new UsageError(`The server refused --since "${opts.since}".`, {
      hint: 'Give a duration such as 30m, 24h or 7d, or an RFC 3339 time.',
    });
  }
  return err;
}

/** One page, with the server's refusal of a filter explained. */
async function page(client: BreezeClient, query: AuditQuery, opts: AuditOptions): Promise<AuditPage> {
  try {
    return await listAuditEvents(client, query);
  } catch (err) {
    throw explainRefusal(err, opts);
  }
}

/** `breeze audit` without --follow: one page of the log, newest first (the API body). */
export async function runAudit(opts: AuditOptions, ctx: CliContext): Promise<AuditPage> {
  const orgId = await orgIdFor(ctx, opts);
  const query = auditQuery(opts, orgId);
  const { client } = await ctx.authenticated();
  return page(client, query, opts);
}

function actorText(e: AuditEventInfo): string {
  const who = e.actor.type === 'system' ? 'system' : (e.actor.email ?? e.actor.id);
  return e.actor.key_id ? `${who} (${e.actor.key_id})` : who;
}

/** One row: time, action, actor, target, ip (server strings: escaped by the table/line gate). */
function row(e: AuditEventInfo): string[] {
  return [
    e.at.replace(/\.\d+Z$/, 'Z'),
    e.action,
    actorText(e),
    `${e.target.type} ${e.target.id}`,
    e.ip ?? '-',
  ];
}

const HEADERS = ['TIME', 'ACTION', 'ACTOR', 'TARGET', 'IP'];
/** Column widths of streamed rows (--follow): a row wider than this just pushes the next column. */
const FOLLOW_WIDTHS = [20, 20, 34, 40];

function streamLine(cells: string[]): TrustedLine {
  const safe = cells.map((c) => terminalLine(c));
  return trustedLine(
    safe
      .map((c, i) => (i < safe.length - 1 ? c.padEnd(FOLLOW_WIDTHS[i] ?? 0) : c))
      .join('  ')
      .trimEnd(),
  );
}

/** Oldest first, ties by id: the order events are streamed in. */
function chronological(a: AuditEventInfo, b: AuditEventInfo): number {
  return a.at < b.at ? -1 : a.at > b.at ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** True for failures worth waiting out: no answer, a 5xx, a rate limit, a garbled answer. */
function isTransient(err: unknown): boolean {
  if (err instanceof NetworkError) return true;
  if (err instanceof ApiError) {
    return err.status >= 500 || err.status === 429 || err.code === 'UNEXPECTED_RESPONSE';
  }
  return false;
}

/**
 * `--follow`: prints the latest events (oldest first), then polls and prints each new event once,
 * until SIGINT/SIGTERM. A poll asks again for a minute before the newest event seen (an event
 * committed late may carry an earlier time) and skips ids already printed. A failed poll is a
 * warning; the next one tries again.
 */
export async function followAudit(
  opts: AuditOptions,
  ctx: CliContext,
  hooks: { stop?: Promise<unknown> } = {},
): Promise<void> {
  const orgId = await orgIdFor(ctx, opts);
  const base = auditQuery(opts, orgId);
  const { client } = await ctx.authenticated();
  const intervalMs = Math.round((opts.interval ?? 2) * 1000);

  let stopped = false;
  let stoppedBy: NodeJS.Signals | null = null;
  let wake: () => void = () => {};
  const stop = () => {
    stopped = true;
    wake();
  };
  // Ctrl-C is the way out of --follow, and it still exits 130 (CLI.md "Exit codes"), SIGTERM 143,
  // like any other interrupted command: a script can tell "stopped" from "ran to completion"
  ctx.onSignal((signal) => {
    stoppedBy ??= signal;
    stop();
  });
  void hooks.stop?.then(stop);
  // the reader has gone (`breeze audit --follow | head -5`): stop, as `tail -f` does, not poll forever
  const onStdoutError = (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') stop();
  };
  process.stdout.on('error', onStdoutError);

  const seen = new Map<string, string>(); // id -> at
  let newest: string | null = null;
  let floor: string | null = null;
  let headerShown = false;

  const print = (events: AuditEventInfo[]) => {
    if (ctx.json) {
      // NDJSON: one compact document per line, escaped like every JSON the CLI prints
      for (const e of events) ctx.out.data(trustedLine(terminalJson(e, { compact: true })));
      return;
    }
    if (!headerShown && events.length > 0) {
      ctx.out.data(streamLine(HEADERS));
      headerShown = true;
    }
    for (const e of events) ctx.out.data(streamLine(row(e)));
  };

  const remember = (events: AuditEventInfo[]) => {
    for (const e of events) {
      seen.set(e.id, e.at);
      if (newest === null || e.at > newest) newest = e.at;
    }
    // forget what a poll can no longer return
    if (newest !== null) {
      const horizon = new Date(Date.parse(newest) - 2 * FOLLOW_OVERLAP_MS).toISOString();
      for (const [id, at] of seen) if (at < horizon) seen.delete(id);
    }
  };

  const first = await page(client, base, opts);
  const initial = [...first.data].sort(chronological);
  // a truncated first page: older events were not shown and must not appear as new later
  if (first.next_cursor !== null && initial[0]) floor = initial[0].at;
  print(initial);
  remember(initial);
  if (!ctx.json && initial.length === 0)
    ctx.out.info('No events yet; waiting for new ones (Ctrl-C to stop).');

  let failing = false;
  while (!stopped) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, intervalMs);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    if (stopped) break;
    try {
      const fresh = await poll(client, base, newest);
      const unseen = fresh.filter((e) => !seen.has(e.id) && (floor === null || e.at >= floor));
      unseen.sort(chronological);
      print(unseen);
      remember(unseen);
      if (failing) ctx.out.info('Connected again.');
      failing = false;
    } catch (err) {
      if (!isTransient(err)) throw err;
      if (!failing) {
        const why = err instanceof ApiError && err.status > 0 ? `HTTP ${err.status}` : (err as Error).message;
        ctx.out.warn(`Could not read the audit log (${why}); retrying every ${intervalMs / 1000} s.`);
      }
      failing = true;
    }
  }
  process.stdout.off('error', onStdoutError);
  ctx.onSignal(null);
  if (stoppedBy) ctx.exitCode = stoppedBy === 'SIGTERM' ? 143 : EXIT.INTERRUPTED;
}

/** Every event since a minute before `newest` (or all matching ones, when none was seen yet). */
async function poll(
  client: BreezeClient,
  base: AuditQuery,
  newest: string | null,
): Promise<AuditEventInfo[]> {
  const since = newest ? new Date(Date.parse(newest) - FOLLOW_OVERLAP_MS).toISOString() : base.since;
  const query: AuditQuery = { ...base, limit: 200, ...(since !== undefined ? { since } : {}) };
  const out: AuditEventInfo[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < FOLLOW_MAX_PAGES; i++) {
    const page: AuditPage = await listAuditEvents(client, cursor ? { ...query, cursor } : query);
    out.push(...page.data);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return out;
}

function positiveNumber(name: string, min: number, max: number) {
  return (v: string) => {
    const n = Number(v);
    if (!/^\d+(\.\d+)?$/.test(v) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be a number from ${min} to ${max}.`);
    }
    return n;
  };
}

export function createCommand(host: CommandHost): Command {
  return new Command('audit')
    .description('the audit log of the current organization, newest first; --follow streams new events')
    .option('--key <key_id>', 'only events about this key or made with it (and the rotation that minted it)')
    .option('--action <action>', 'only this action (key.created, key.rotated, member.joined, ...)')
    .option('--since <when>', 'only events since then: a duration (30m, 24h, 7d) or an RFC 3339 time')
    .option('--org <org>', 'organization (id or name); default: the current one')
    .option('--limit <n>', 'events to show (1-200, default 50)', positiveNumber('--limit', 1, 200))
    .option('-f, --follow', 'keep printing new events as they happen, until Ctrl-C')
    .addOption(
      new Option('--interval <seconds>', 'seconds between polls with --follow (default 2)')
        .argParser(positiveNumber('--interval', 0.1, 3600))
        .hideHelp(),
    )
    .addHelpText(
      'after',
      `
Owners and admins see every event of the organization; other members see what they did and what
was done to their keys and membership. Events are kept as long as the server's retention says
(breeze serve --audit-retention-days, default 365).

--json prints the API's answer ({"data": [...], "next_cursor"}); with --follow, one event per line.

Examples:
  $ breeze audit
  $ breeze audit --since 24h --action key.rotated
  $ breeze audit --key key_01J... --json
  $ breeze audit --follow
  $ breeze audit --org acme --since 7d`,
    )
    .action(async (opts: AuditOptions, cmd: Command) => {
      const ctx = await host.context(cmd);
      if (opts.limit !== undefined && !Number.isInteger(opts.limit)) {
        throw new UsageError('--limit must be a whole number from 1 to 200.');
      }
      if (opts.follow) return followAudit(opts, ctx);
      const page = await runAudit(opts, ctx);
      if (ctx.json) return ctx.out.json(page);
      if (page.data.length === 0) return ctx.out.info('No events.');
      const { renderTable } = await import('../ui/table.js');
      ctx.out.data(renderTable(HEADERS, page.data.map(row)));
      if (page.next_cursor) {
        ctx.out.info(
          `Showing the newest ${page.data.length}; narrow with --since, --action or --key, or raise --limit.`,
        );
      }
    });
}
