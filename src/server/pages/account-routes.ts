import type { FastifyInstance } from 'fastify';
import { accountPage } from './account-page.js';
import { authOf, type DashboardKit, send } from './dashboard-kit.js';
import { HIDE, rateLimit, seeOther } from './http.js';

/** `/account`: the user's browser sessions (sign out one, or all) and the keys of their CLI logins. */
export function registerAccountRoutes(app: FastifyInstance, kit: DashboardKit): void {
  const { ctx, ops, sessions, sessionRepo, queries } = kit;

  app.get('/account', { schema: HIDE }, async (request, reply) => {
    const session = await kit.signedIn(request, reply);
    if (!session) return reply;
    const auth = authOf(session);
    const access = await kit.currentOrg(request, auth);
    const now = ctx.clock();
    const [list, cliKeys, orgs] = await Promise.all([
      sessionRepo.listLive(session.user.id, now.toISOString()),
      queries.cliLoginKeys(session.user.id, 50),
      ctx.store.orgs.listForUser(session.user.id),
    ]);
    return send(
      reply,
      200,
      accountPage({
        viewer: await kit.viewer(request, reply, session, access.orgId),
        sessions: list,
        currentSessionId: session.id,
        cliKeys: cliKeys.map((r) => ops.info(r)),
        memberOf: new Set(orgs.map((o) => o.id)),
        now,
      }),
    );
  });

  app.post<{ Params: { session_id: string } }>(
    '/account/sessions/:session_id/revoke',
    { schema: HIDE, config: rateLimit(30) },
    async (request, reply) => {
      const session = await kit.formSession(request, reply);
      if (!session) return reply;
      if (request.params.session_id === session.id) {
        await sessions.destroy(request, reply);
        return seeOther(reply, '/login');
      }
      const ended = await sessionRepo.deleteOfUser(session.user.id, request.params.session_id);
      kit.flash.set(
        reply,
        session,
        ended
          ? { kind: 'ok', text: 'That session is signed out.' }
          : { kind: 'error', text: 'No such session: it ended already.' },
      );
      return seeOther(reply, '/account');
    },
  );

  app.post(
    '/account/sessions/revoke-all',
    { schema: HIDE, config: rateLimit(30) },
    async (request, reply) => {
      const session = await kit.formSession(request, reply);
      if (!session) return reply;
      await sessionRepo.deleteAllOfUser(session.user.id);
      await sessions.destroy(request, reply);
      return seeOther(reply, '/login');
    },
  );
}
