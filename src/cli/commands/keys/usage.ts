import { Command, Option } from 'commander';
import type { UsageBucket } from '../../../client/usage.js';
import type { CliContext } from '../../context.js';
import { UsageError } from '../../errors.js';
import type { CommandHost } from '../host.js';
import { durationArg } from './common.js';

export interface KeysUsageOptions {
  /** seconds back from now (default 7 days) */
  since?: number;
  granularity?: 'hour' | 'day';
}

const HOUR_S = 3600;
/** the server answers at most 93 days of hours */
const MAX_HOURS = 24 * 93;

/**
 * `GET /v1/api-keys/:key_id/usage` for the last `since` seconds; hourly up to two days back,
 * daily beyond (unless `granularity` says otherwise).
 */
export async function runKeysUsage(
  keyId: string,
  opts: KeysUsageOptions,
  ctx: CliContext,
): Promise<{ data: UsageBucket[]; granularity: 'hour' | 'day' }> {
  const since = opts.since ?? 7 * 86400;
  if (since <= 0)
    throw new UsageError('--since must be longer than 0.', { hint: 'For example --since 24h.' });
  const granularity = opts.granularity ?? (since > 2 * 86400 ? 'day' : 'hour');
  if (granularity === 'hour' && since > MAX_HOURS * HOUR_S) {
    throw new UsageError('--since is longer than 93 days of hourly buckets.', {
      hint: 'Add --granularity day, or ask for less (e.g. --since 30d).',
    });
  }
  const { client } = await ctx.authenticated();
  const { getKeyUsage } = await import('../../../client/usage.js');
  const from = new Date(Date.now() - since * 1000).toISOString();
  const { data } = await getKeyUsage(client, keyId, { from, granularity });
  return { data, granularity };
}

function label(at: string, granularity: 'hour' | 'day'): string {
  return granularity === 'day' ? at.slice(0, 10) : `${at.slice(5, 10)} ${at.slice(11, 16)}`;
}

function columns(): number {
  const fromEnv = Number(process.env.COLUMNS);
  return process.stdout.columns || (Number.isFinite(fromEnv) && fromEnv > 0 ? fromEnv : 80);
}

export function createUsageCommand(host: CommandHost): Command {
  return new Command('usage')
    .description("a key's requests per hour or day: a bar chart, or rows with --json")
    .argument('<key_id>', 'the key')
    .option('--since <duration>', 'how far back: 24h, 7d, 30d (default 7d)', durationArg)
    .addOption(
      new Option('--granularity <unit>', 'bucket size (default: hour up to 2 days back, else day)').choices([
        'hour',
        'day',
      ]),
    )
    .addHelpText(
      'after',
      '\nExamples:\n  $ breeze keys usage key_01J... --since 24h\n  $ breeze keys usage key_01J... --since 30d --granularity day --json',
    )
    .action(async (keyId: string, opts: KeysUsageOptions, cmd: Command) => {
      if (!/^key_[0-9A-Za-z]{1,64}$/.test(keyId))
        throw new UsageError(`"${keyId}" is not a key id.`, {
          hint: 'Key ids look like key_01J…; see "breeze keys list".',
        });
      const ctx = await host.context(cmd);
      const { data, granularity } = await runKeysUsage(keyId, opts, ctx);
      if (ctx.json) return ctx.out.json({ data });
      if (data.length === 0) return ctx.out.info('No usage in that range.');
      const { renderBarChart } = await import('../../ui/bar-chart.js');
      const { themeFor } = await import('../../ui/theme.js');
      const rows = data.map((b) => ({
        label: label(b.at, granularity),
        value: b.requests,
        marked: b.rejected,
        note: b.rejected > 0 ? `${b.requests} (${b.rejected} rejected)` : String(b.requests),
      }));
      ctx.out.data(renderBarChart(rows, { width: columns(), theme: themeFor('stdout') }));
      const total = data.reduce((n, b) => n + b.requests, 0);
      const rejected = data.reduce((n, b) => n + b.rejected, 0);
      ctx.out.info(`${total} requests, ${rejected} rejected, per ${granularity} (UTC).`);
    });
}
