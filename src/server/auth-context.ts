import type { OrgRef, ProjectRef, Scope, UserInfo } from '../core/types.js';

/** Who is calling: set by the auth plugin on every authenticated request. */
export interface AuthContext {
  type: 'api_key' | 'jwt' | 'session';
  user: UserInfo;
  scopes: Scope[];
  /** set for `api_key` */
  keyId?: string;
  /**
   * `api_key` only: the key's organization (with its creator's role there) and project, and the
   * key's own scopes before the role cap (`scopes` are the effective ones in that organization).
   */
  org?: OrgRef;
  project?: ProjectRef;
  keyScopes?: Scope[];
}
