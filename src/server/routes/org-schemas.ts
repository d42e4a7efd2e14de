import { ROLES } from '../../core/types.js';
import { idSchema, textSchema } from './schemas.js';

/** JSON schemas of the organization routes (PLATFORM.md "Organizations, members, projects"). */
const timestamp = { type: 'string', format: 'date-time' } as const;

export const roleSchema = { type: 'string', enum: [...ROLES] } as const;
/** organization and project names: text fields (no control characters) */
export const orgNameSchema = textSchema(100);
export const projectNameSchema = textSchema(100);

export const orgSchema = {
  type: 'object',
  required: ['id', 'name', 'role', 'created_at'],
  properties: { id: { type: 'string' }, name: { type: 'string' }, role: roleSchema, created_at: timestamp },
} as const;

export const memberSchema = {
  type: 'object',
  required: ['user', 'role', 'joined_at'],
  properties: {
    user: {
      type: 'object',
      required: ['id', 'email'],
      properties: { id: { type: 'string' }, email: { type: 'string' } },
    },
    role: roleSchema,
    joined_at: timestamp,
  },
} as const;

export const projectSchema = {
  type: 'object',
  required: ['id', 'org_id', 'name', 'created_at'],
  properties: {
    id: { type: 'string' },
    org_id: { type: 'string' },
    name: { type: 'string' },
    created_at: timestamp,
  },
} as const;

export const invitationSchema = {
  type: 'object',
  required: ['id', 'email', 'role', 'expires_at'],
  properties: {
    id: { type: 'string' },
    org_id: { type: 'string' },
    email: { type: 'string' },
    role: roleSchema,
    expires_at: timestamp,
  },
} as const;

export const orgIdParams = {
  type: 'object',
  required: ['org_id'],
  properties: { org_id: idSchema },
} as const;

export function listOf<T extends object>(item: T) {
  return {
    type: 'object',
    required: ['data'],
    properties: { data: { type: 'array', items: item } },
  } as const;
}

/** A member as the API shows it. */
export function memberView(m: { user_id: string; email: string; role: string; joined_at: string }) {
  return { user: { id: m.user_id, email: m.email }, role: m.role, joined_at: m.joined_at };
}
