import type { FastifyInstance } from 'fastify';

/** First run shortly after start, then hourly. */
export const AUDIT_PRUNE_FIRST_MS = 2_000;
export const AUDIT_PRUNE_EVERY_MS = 3600_000;

/**
 * Deletes audit events past the retention (`config.auditRetentionDays`) in the background: batched
 * deletes, on an unref'd timer (it never keeps a process alive), stopped when the server closes.
 * Several instances on one database may each run it: deleting an old row twice is harmless.
 */
export function startAuditPruner(
  app: FastifyInstance,
  opts: { firstMs?: number; everyMs?: number } = {},
): { runNow(): Promise<number> } {
  const { audit, config } = app.breeze;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<number> | null = null;
  let closed = false;

  const runNow = (): Promise<number> => {
    if (running) return running;
    running = audit
      .prune(config.auditRetentionDays)
      .catch((err: Error) => {
        if (!closed) app.log.error({ prune_error: err.message }, 'audit pruning failed');
        return 0;
      })
      .finally(() => {
        running = null;
      });
    return running;
  };

  const schedule = (ms: number) => {
    if (closed) return;
    timer = setTimeout(() => {
      void runNow().then(() => schedule(opts.everyMs ?? AUDIT_PRUNE_EVERY_MS));
    }, ms);
    timer.unref();
  };

  if (config.auditRetentionDays > 0) schedule(opts.firstMs ?? AUDIT_PRUNE_FIRST_MS);
  app.addHook('onClose', async () => {
    closed = true;
    if (timer) clearTimeout(timer);
    await running;
  });
  return { runNow };
}
