import { Command } from 'commander';
import { formatDuration } from '../../core/duration.js';
import { DEFAULT_IDLE_MS, residentPaths } from '../../core/resident.js';
import type { CliContext } from '../context.js';
import type { CommandHost } from './host.js';

/** `server status --json` */
export interface ResidentStatus {
  running: boolean;
  pid: number | null;
  version: string | null;
  socket: string;
  url: string | null;
  idle_ms: number | null;
  started_at: string | null;
}

export async function runServerStatus(ctx: CliContext): Promise<ResidentStatus> {
  const { findResident } = await import('../resident.js');
  const paths = residentPaths(ctx.configDir);
  const found = await findResident(paths);
  return {
    running: Boolean(found),
    pid: found?.record.pid ?? null,
    version: found?.record.version ?? null,
    socket: paths.socket,
    url: found?.record.url ?? null,
    idle_ms: found?.idleMs ?? null,
    started_at: found?.record.started_at ?? null,
  };
}

/** The idle time after which the resident server exits: `BREEZE_SERVER_IDLE_MS`, default 2 min. */
export function idleMs(env: NodeJS.ProcessEnv): number {
  const v = env.BREEZE_SERVER_IDLE_MS;
  return v && /^\d{1,10}$/.test(v) && Number(v) > 0 ? Number(v) : DEFAULT_IDLE_MS;
}

export function createCommand(host: CommandHost): Command {
  const server = new Command('server')
    .description('the embedded server running in the background (started by the first command that needs it)')
    .addHelpText(
      'after',
      `
With no server configured, commands that need the server start the embedded one in the background
(unix socket <config dir>/server/breeze.sock, a 127.0.0.1 port for browser pages); later commands
reuse it, and it exits after ${DEFAULT_IDLE_MS / 60_000} minutes without requests (BREEZE_SERVER_IDLE_MS).

Examples:
  $ breeze server status
  $ breeze server stop`,
    );
  server
    .command('status')
    .description('whether the background server runs: pid, version, socket, URL, idle time')
    .action(async (_o, cmd: Command) => {
      const ctx = await host.context(cmd);
      const s = await runServerStatus(ctx);
      if (ctx.json) {
        ctx.out.json(s);
        return;
      }
      if (!s.running) {
        ctx.out.data([`Not running (${ctx.configDir}/server).`]);
        return;
      }
      ctx.out.data([
        `Running:  pid ${s.pid}, version ${s.version}`,
        `Socket:   ${s.socket}`,
        `URL:      ${s.url}`,
        `Idle:     ${formatDuration(Math.round((s.idle_ms ?? 0) / 1000))} (exits after ${formatDuration(Math.round(idleMs(ctx.env) / 1000))} idle)`,
      ]);
    });
  server
    .command('stop')
    .description('stop the background server (the next command that needs it starts it again)')
    .action(async (_o, cmd: Command) => {
      const ctx = await host.context(cmd);
      const { stopResident } = await import('../resident.js');
      const pid = await stopResident(residentPaths(ctx.configDir));
      if (ctx.json) ctx.out.json({ stopped: pid !== undefined, pid: pid ?? null });
      else if (pid !== undefined) ctx.out.success(`Stopped the background server (pid ${pid}).`);
      else ctx.out.info('The background server is not running.');
    });
  server
    .command('run', { hidden: true })
    .description('run the background server in the foreground (what commands start)')
    .action(async (_o, cmd: Command) => {
      const ctx = await host.context(cmd);
      await runResident(ctx);
    });
  return server;
}

async function runResident(ctx: CliContext): Promise<void> {
  const [{ runResidentServer }, { cliVersion }] = await Promise.all([
    import('../../server/resident.js'),
    import('../version.js'),
  ]);
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  ctx.onSignal(() => stop());
  process.on('SIGHUP', () => {}); // no terminal to hang up on: a closed session must not stop it
  const line = (m: string) => process.stderr.write(`${new Date().toISOString()} ${m}\n`);
  await runResidentServer({
    configDir: ctx.configDir,
    version: cliVersion(),
    idleMs: idleMs(ctx.env),
    stop: stopped,
    log: line,
  });
  ctx.onSignal(null);
}
