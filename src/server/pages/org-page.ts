import { ROLES, type Role } from '../../core/types.js';
import type { InvitationRow } from '../store/invitations.js';
import type { MemberRow, ProjectRow } from '../store/orgs.js';
import { dashboardLayout, postForm, timeTag, type Viewer } from './layout.js';
import { type Html, html } from './views.js';

export interface OrgView {
  viewer: Viewer;
  org: { id: string; name: string };
  role: Role;
  userId: string;
  members: MemberRow[];
  projects: ProjectRow[];
  /** set only for roles that may invite */
  invitations?: InvitationRow[];
  can: { manageMembers: boolean; manageProjects: boolean; invite: boolean };
  now: Date;
  /** round 2: webhooks and OIDC trusts drop in here (each only for roles that may use it) */
  extraSections?: Html[];
}

function roleSelect(id: string, selected: Role, allowOwner: boolean): Html {
  return html`<select id="${id}" name="role">${ROLES.filter((r) => allowOwner || r !== 'owner').map(
    (r) => html`<option value="${r}"${r === selected ? ' selected' : ''}>${r}</option>`,
  )}</select>`;
}

/** `/orgs/:org_id`: members and roles, invitations, projects; each section only where the role may use it. */
export function orgPage(v: OrgView): string {
  const base = `/orgs/${v.org.id}`;
  const csrf = v.viewer.csrf;
  const owner = v.role === 'owner';
  const members = html`<section class="card" aria-labelledby="h-members"><h2 id="h-members">Members</h2>
<div class="scroll"><table><caption class="sr-only">Members</caption>
<thead><tr><th scope="col">Email</th><th scope="col">Role</th><th scope="col">Joined</th>${v.can.manageMembers ? html`<th scope="col"><span class="sr-only">Actions</span></th>` : ''}</tr></thead>
<tbody>${v.members.map((m, i) => {
    const self = m.user_id === v.userId;
    const editable = v.can.manageMembers && !self && (owner || m.role !== 'owner');
    return html`<tr><td>${m.email}${self ? html`<span class="badge">you</span>` : ''}</td><td>${
      editable
        ? postForm(
            `${base}/members/${m.user_id}/role`,
            csrf,
            html`<label class="sr-only" for="role-${i}">Role of ${m.email}</label>${roleSelect(`role-${i}`, m.role, owner)} <button class="secondary" type="submit">Change</button>`,
            { className: 'inline' },
          )
        : m.role
    }</td><td>${timeTag(m.joined_at, v.now)}</td>${
      v.can.manageMembers
        ? html`<td>${
            editable
              ? postForm(
                  `${base}/members/${m.user_id}/remove`,
                  csrf,
                  html`<button class="link" type="submit">Remove<span class="sr-only"> ${m.email}</span></button>`,
                  {
                    className: 'inline',
                    confirm: `Remove ${m.email} from ${v.org.name}? Their keys here stop working.`,
                  },
                )
              : ''
          }</td>`
        : ''
    }</tr>`;
  })}</tbody></table></div></section>`;
  const invitations = v.invitations
    ? html`<section class="card" aria-labelledby="h-invitations"><h2 id="h-invitations">Invitations</h2>
${postForm(
  `${base}/invitations`,
  csrf,
  html`<div class="row"><div class="field"><label for="invite-email">Email</label><input id="invite-email" name="email" type="email" required maxlength="254" autocomplete="off"></div>
<div class="field"><label for="invite-role">Role</label>${roleSelect('invite-role', 'member', owner)}</div><button class="primary" type="submit">Send invitation</button></div>`,
)}
${
  v.invitations.length === 0
    ? html`<p class="muted after">No open invitations.</p>`
    : html`<div class="scroll after"><table><caption class="sr-only">Open invitations</caption><thead><tr><th scope="col">Email</th><th scope="col">Role</th><th scope="col">Expires</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead><tbody>${v.invitations.map(
        (inv) =>
          html`<tr><td>${inv.email}</td><td>${inv.role}</td><td>${timeTag(inv.expires_at, v.now)}</td><td>${postForm(
            `${base}/invitations/${inv.id}/revoke`,
            csrf,
            html`<button class="link" type="submit">Revoke<span class="sr-only"> the invitation of ${inv.email}</span></button>`,
            { className: 'inline' },
          )}</td></tr>`,
      )}</tbody></table></div>`
}</section>`
    : '';
  const projects = html`<section class="card" aria-labelledby="h-projects"><h2 id="h-projects">Projects</h2>
<div class="scroll"><table><caption class="sr-only">Projects</caption><thead><tr><th scope="col">Name</th><th scope="col">Created</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead><tbody>${v.projects.map(
    (p) =>
      html`<tr><td><a href="/keys?org_id=${v.org.id}&amp;project_id=${p.id}">${p.name}</a></td><td>${timeTag(p.created_at, v.now)}</td><td>${
        v.can.manageProjects && p.name !== 'default'
          ? postForm(
              `${base}/projects/${p.id}/delete`,
              csrf,
              html`<button class="link" type="submit">Delete<span class="sr-only"> project ${p.name}</span></button>`,
              {
                className: 'inline',
                confirm: `Delete the project ${p.name}? Only an empty project can be deleted.`,
              },
            )
          : ''
      }</td></tr>`,
  )}</tbody></table></div>
${
  v.can.manageProjects
    ? postForm(
        `${base}/projects`,
        csrf,
        html`<div class="row after"><div class="field"><label for="project-name">New project</label><input id="project-name" name="name" type="text" required maxlength="100" autocomplete="off"></div><button class="secondary" type="submit">Create project</button></div>`,
      )
    : ''
}</section>`;
  return dashboardLayout({
    title: v.org.name,
    viewer: v.viewer,
    active: 'org',
    body: html`<div class="head"><div><h1>${v.org.name}</h1><p class="muted">Your role: <strong>${v.role}</strong></p></div></div>
${members}
${invitations}
${projects}
${v.extraSections ?? ''}`,
  });
}
