import { InvalidArgumentError } from 'commander';
import { isRole, ROLES, type Role } from '../../../client/platform.js';

/** commander parser for a role: owner, admin, member or viewer (anything else is exit 2). */
export function roleArg(value: string): Role {
  const v = value.trim().toLowerCase();
  if (!isRole(v)) throw new InvalidArgumentError(`use one of ${ROLES.join(', ')}.`);
  return v;
}
