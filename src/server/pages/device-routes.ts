import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { normaliseScopes } from '../../core/types.js';
import { clientIp } from '../client-ip.js';
import { requestMeta } from '../services/audit.js';
import { CliLoginService, formatUserCode, normaliseUserCode } from '../services/cli-logins.js';
import type { BrowserSession } from '../session.js';
import type { LoginRow } from '../store/logins.js';
import { field } from './forms.js';
import { HIDE, rateLimit, seeOther } from './http.js';
import { displayIp, sameNetwork } from './ip.js';
import { type PageKit, sendPage } from './page-kit.js';
import { authorizePage, html, resultPage, typeCodePage } from './views.js';

/**
 * The CSP source that lets the approve form's redirect reach the loopback listener. CSP host
 * sources cannot spell an IPv6 literal (Chromium ignores `http://[::1]:port`), so an `[::1]`
 * target needs the `http:` scheme source; `127.0.0.1` gets its exact origin.
 */
export function formTarget(redirectUri: string): string {
  const url = new URL(redirectUri);
  return url.hostname.startsWith('[') ? 'http:' : url.origin;
}

/**
 * The approval of a CLI login: `/device` (type the code, or, for a login with a loopback redirect,
 * arrive with `?user_code=`), then Approve / Deny.
 */
export function registerDeviceRoutes(app: FastifyInstance, kit: PageKit): void {
  const { ctx, sessions } = kit;
  const logins = new CliLoginService(ctx);

  function decidedPage(reply: FastifyReply, login: LoginRow): FastifyReply {
    switch (login.status) {
      case 'approved':
      case 'exchanged':
        return sendPage(
          reply,
          409,
          resultPage('ok', 'Already approved', 'This login was approved already. Return to your terminal.'),
        );
      case 'denied':
        return sendPage(
          reply,
          409,
          resultPage(
            'bad',
            'Login denied',
            'This login was denied. Run "breeze login" again if that was a mistake.',
          ),
        );
      default:
        return expiredPage(reply);
    }
  }

  function expiredPage(reply: FastifyReply): FastifyReply {
    return sendPage(
      reply,
      410,
      resultPage(
        'warn',
        'This login expired',
        html`Codes are valid for 10 minutes. Run <kbd>breeze login</kbd> again to get a new one.`,
      ),
    );
  }

  function unknownCode(reply: FastifyReply, session: BrowserSession, value: string): FastifyReply {
    return sendPage(
      reply,
      404,
      typeCodePage({
        email: session.user.email,
        csrf: session.csrf,
        value: value.slice(0, 12),
        error: 'No login is waiting for that code. Check the code in your terminal.',
      }),
    );
  }

  /** The approver's projects, personal `default` first (the picker's preselection). */
  async function projectChoices(user: {
    id: string;
    email: string;
  }): Promise<{ id: string; label: string }[]> {
    const { project } = await ctx.store.orgs.ensurePersonal(user, ctx.clock());
    const all = await ctx.store.orgs.projectsOfUser(user.id);
    const label = (p: (typeof all)[number]) => `${p.org_name} / ${p.name}`;
    const personal = all.filter((p) => p.id === project.id);
    return [...personal, ...all.filter((p) => p.id !== project.id)].map((p) => ({
      id: p.id,
      label: label(p),
    }));
  }

  /** What proves that the user typed the code of `login` on our page (device mode only). */
  const typedPurpose = (login: LoginRow) => `device-typed:${login.id}`;

  /**
   * The Approve / Deny page of a live, pending login. Device mode (no loopback redirect) comes here
   * only from the typed-code form, and its Approve form carries the proof of that.
   */
  async function authorize(
    request: FastifyRequest,
    reply: FastifyReply,
    session: BrowserSession,
    login: LoginRow,
    userCode: string,
  ): Promise<FastifyReply> {
    const device = !login.redirect_uri;
    const targets = login.redirect_uri ? [formTarget(login.redirect_uri)] : [];
    return sendPage(
      reply,
      200,
      authorizePage({
        mode: device ? 'device' : 'loopback',
        // the lookup matched, so the code normalises to the canonical one
        userCode: formatUserCode(normaliseUserCode(userCode) ?? ''),
        clientName: login.client_name,
        hostname: login.hostname,
        keyName: login.key_name ?? `${login.hostname} (breeze login)`,
        ip: displayIp(login.requester_ip),
        approverIp: displayIp(clientIp(request)),
        sameNetwork: sameNetwork(login.requester_ip, clientIp(request)),
        createdAt: new Date(login.created_at),
        now: ctx.clock(),
        expiresAt: new Date(login.expires_at),
        scopes: normaliseScopes(login.scopes.split(' ')),
        email: session.user.email,
        csrf: session.csrf,
        typed: device ? sessions.proof(session, typedPurpose(login)) : undefined,
        projects: await projectChoices(session.user),
      }),
      targets,
    );
  }

  /**
   * `/device` and `verification_uri_complete` (`/device?user_code=...`). A login with a loopback
   * redirect gets its Approve page at once: the approval can only reach the CLI on the approver's
   * own computer. A login from another device never does: its link opens the code-entry page,
   * empty, and the Approve form appears only after the user typed the code there (POST /device).
   */
  app.get('/device', { schema: HIDE, config: rateLimit(60) }, async (request, reply) => {
    const session = await sessions.current(request);
    const userCode = field(request.query, 'user_code')?.trim();
    if (!session)
      return kit.signInFirst(
        reply,
        userCode ? `/device?user_code=${encodeURIComponent(userCode)}` : '/device',
      );
    if (!userCode)
      return sendPage(reply, 200, typeCodePage({ email: session.user.email, csrf: session.csrf }));
    const found = await logins.lookup(userCode);
    // never prefilled from a link, not even with a code that matches nothing
    if (found.kind === 'unknown') return unknownCode(reply, session, '');
    if (found.kind === 'expired') return expiredPage(reply);
    const login = found.login;
    if (login.status !== 'pending') return decidedPage(reply, login);
    if (!login.redirect_uri) {
      return sendPage(
        reply,
        200,
        typeCodePage({ email: session.user.email, csrf: session.csrf, fromLink: true }),
      );
    }
    return authorize(request, reply, session, login, userCode);
  });

  /** The typed code: a same-origin form post of a signed-in session. */
  app.post('/device', { schema: HIDE, config: rateLimit(60) }, async (request, reply) => {
    const session = await sessions.current(request);
    if (!session) return kit.signInFirst(reply, '/device');
    if (!kit.sessionFormOk(request, session)) return kit.expiredForm(reply);
    const userCode = (field(request.body, 'user_code') ?? '').trim();
    const found = await logins.lookup(userCode);
    if (found.kind === 'unknown') return unknownCode(reply, session, userCode);
    if (found.kind === 'expired') return expiredPage(reply);
    if (found.login.status !== 'pending') return decidedPage(reply, found.login);
    return authorize(request, reply, session, found.login, userCode);
  });

  for (const action of ['approve', 'deny'] as const) {
    app.post(`/device/${action}`, { schema: HIDE, config: rateLimit(60) }, async (request, reply) => {
      const userCode = (field(request.body, 'user_code') ?? '').trim();
      const session = await sessions.current(request);
      if (!session) return kit.signInFirst(reply, `/device?user_code=${encodeURIComponent(userCode)}`);
      if (!kit.sessionFormOk(request, session)) return kit.expiredForm(reply);
      const found = await logins.lookup(userCode);
      if (found.kind === 'unknown') return unknownCode(reply, session, userCode);
      if (found.kind === 'expired') return expiredPage(reply);
      // device mode: only a form reached by typing the code may approve (denying hands out nothing)
      if (
        action === 'approve' &&
        !found.login.redirect_uri &&
        !sessions.checkProof(session, typedPurpose(found.login), field(request.body, 'typed'))
      ) {
        return sendPage(
          reply,
          403,
          typeCodePage({
            email: session.user.email,
            csrf: session.csrf,
            error: 'To approve a login from another device, type the code that device shows.',
          }),
        );
      }
      // the project picker: only one of the approver's own projects (else the personal `default`)
      const picked = action === 'approve' ? field(request.body, 'project_id') : undefined;
      const projectId = picked
        ? (await projectChoices(session.user)).find((p) => p.id === picked)?.id
        : undefined;
      if (picked && !projectId) return unknownCode(reply, session, userCode);
      const decided =
        action === 'approve'
          ? await logins.approve(found.login, session.user.id, projectId, requestMeta(request))
          : await logins.deny(found.login, session.user.id, requestMeta(request));
      if (!decided) {
        const again = await logins.lookup(userCode);
        return again.kind === 'live' ? decidedPage(reply, again.login) : expiredPage(reply);
      }
      if (decided.redirect) return seeOther(reply, decided.redirect);
      return action === 'approve'
        ? sendPage(
            reply,
            200,
            resultPage(
              'ok',
              'Login approved',
              'Return to your terminal: breeze is finishing the login. You can close this tab.',
            ),
          )
        : sendPage(
            reply,
            200,
            resultPage('bad', 'Login denied', 'No key was created. You can close this tab.'),
          );
    });
  }
}
