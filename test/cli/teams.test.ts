/**
 * The team commands in-process: `run…(opts, ctx)` with a CliContext over a temp config dir against
 * a real server on port 0 (SQLite). What they return (the data `--json` prints) and the error
 * classes and exit codes main.ts turns them into.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInvitationsAccept } from '../../src/cli/commands/invitations/accept.js';
import { runMembersList } from '../../src/cli/commands/members/list.js';
import { runMembersRemove } from '../../src/cli/commands/members/remove.js';
import { runMembersRole } from '../../src/cli/commands/members/role.js';
import { runOrgsCreate } from '../../src/cli/commands/orgs/create.js';
import { runOrgsList } from '../../src/cli/commands/orgs/list.js';
import { runOrgsSwitch } from '../../src/cli/commands/orgs/switch.js';
import { runProjectsCreate } from '../../src/cli/commands/projects/create.js';
import { runProjectsDelete } from '../../src/cli/commands/projects/delete.js';
import { runProjectsList } from '../../src/cli/commands/projects/list.js';
import { createContext } from '../../src/cli/context.js';
import { EXIT, exitCodeOf, UserError } from '../../src/cli/errors.js';
import type { Output } from '../../src/cli/ui/output.js';
import { type RunningServer, startServer } from '../../src/server/serve.js';
import { seedKeyInDataDir } from '../helpers/cli.js';

let server: RunningServer;
let dataDir: string;
const dirs: string[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'breeze-teams-cli-'));
  dirs.push(dataDir);
  server = await startServer({ host: '127.0.0.1', port: 0, dataDir, logger: false, rateLimitPerKey: 0 });
});
afterAll(async () => {
  await server?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const quiet: Output = { data: () => {}, json: () => {}, info: () => {}, warn: () => {}, success: () => {} };

/** A context whose credential is BREEZE_API_KEY: a key of a fresh user. */
async function asNewUser(email: string) {
  const seeded = await seedKeyInDataDir(dataDir, { email });
  const parent = mkdtempSync(join(tmpdir(), 'breeze-teams-cli-cfg-'));
  dirs.push(parent);
  const ctx = await createContext(
    { configDir: join(parent, 'config'), server: server.url },
    { env: { BREEZE_API_KEY: seeded.apiKey }, output: quiet },
  );
  return { ctx, ...seeded };
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a failure');
    },
    (err: unknown) => err,
  );
}

describe('team commands in-process', () => {
  it('without a stored profile: act on the key’s org; switching needs a stored login', async () => {
    const a = await asNewUser('inproc-a@example.com');
    const orgs = await runOrgsList({}, a.ctx);
    expect(orgs.data).toHaveLength(1);
    expect(orgs.current).toBe(orgs.data[0]?.id);
    const projects = await runProjectsList({}, a.ctx);
    expect(projects.data.map((p) => p.name)).toEqual(['default']);
    const err = await failure(runOrgsSwitch({ org: orgs.data[0]!.id }, a.ctx));
    expect(err).toBeInstanceOf(UserError);
    expect(exitCodeOf(err)).toBe(EXIT.FAILURE);
  });

  it('conflicts are UserErrors with exit 1; unknown names, members and invitations exit 4; an empty code exits 2', async () => {
    const a = await asNewUser('inproc-owner@example.com');
    const b = await asNewUser('inproc-other@example.com');
    const org = await runOrgsCreate({ name: 'In-process Inc' }, a.ctx);
    expect(org.name).toBe('In-process Inc');
    // the personal org stays the key's org: projects created without a switch land there
    const created = await runProjectsCreate({ name: 'tools' }, a.ctx);
    expect((await runProjectsList({}, a.ctx)).data.map((p) => p.id)).toContain(created.id);
    expect(await runProjectsDelete({ project: 'tools' }, a.ctx)).toEqual({
      id: created.id,
      name: 'tools',
      deleted: true,
    });
    const lastOwner = await failure(
      runMembersRole({ user: 'inproc-owner@example.com', role: 'admin' }, a.ctx),
    );
    expect(lastOwner).toBeInstanceOf(UserError);
    expect((lastOwner as Error).message).toContain('an organization keeps at least one owner');
    expect(exitCodeOf(lastOwner)).toBe(EXIT.FAILURE);
    // a member of another organization is not found in one's own
    const notMember = await failure(runMembersRemove({ user: 'inproc-owner@example.com' }, b.ctx));
    expect(exitCodeOf(notMember)).toBe(EXIT.FORBIDDEN);
    const noProject = await failure(runProjectsDelete({ project: 'nope' }, a.ctx));
    expect(exitCodeOf(noProject)).toBe(EXIT.FORBIDDEN);
    const members = await runMembersList({}, a.ctx);
    expect(members.data.map((m) => [m.user.email, m.role])).toEqual([['inproc-owner@example.com', 'owner']]);
    const wrong = await failure(
      runInvitationsAccept({ id: 'inv_01M8QKG3JXS56QRWFGXZQ31CWM', code: 'AAAAAAAA' }, b.ctx),
    );
    expect(exitCodeOf(wrong)).toBe(EXIT.FORBIDDEN);
    const empty = await failure(
      runInvitationsAccept({ id: 'inv_01M8QKG3JXS56QRWFGXZQ31CWM', code: ' - ' }, b.ctx),
    );
    expect(exitCodeOf(empty)).toBe(EXIT.USAGE);
  });
});
