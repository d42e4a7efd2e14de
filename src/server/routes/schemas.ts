import type { FastifyRequest } from 'fastify';
import { SCOPES } from '../../core/types.js';
import { ID_MAX_LENGTH, ID_PATTERN, NO_CONTROLS_PATTERN, PRINTABLE_PATTERN } from '../validation.js';

/** JSON schemas shared by routes: validation, serialisation and the OpenAPI document. */
const timestamp = { type: 'string', format: 'date-time' } as const;
const nullableTimestamp = { type: ['string', 'null'], format: 'date-time' } as const;

/**
 * A text field (API.md "Conventions"): no control character (U+0000–U+001F, U+007F–U+009F), at
 * most `max` characters and, unless `allowBlank`, at least one non-space character. Every string a
 * request body stores uses this (or `emailSchema`), so no engine ever sees a NUL byte.
 */
export function textSchema(max: number, opts: { allowBlank?: boolean } = {}) {
  return opts.allowBlank
    ? ({ type: 'string', maxLength: max, pattern: NO_CONTROLS_PATTERN } as const)
    : ({ type: 'string', minLength: 1, maxLength: max, pattern: PRINTABLE_PATTERN } as const);
}

export { emailSchema } from '../validation.js';

/**
 * A path parameter naming one of our ids. Values outside this never reach a handler: the id check
 * (plugins/input.ts) answers them `404` first, since no such resource can exist.
 */
export const idSchema = {
  type: 'string',
  minLength: 1,
  maxLength: ID_MAX_LENGTH,
  pattern: ID_PATTERN,
} as const;

export const scopesSchema = {
  type: 'array',
  items: { type: 'string', enum: [...SCOPES] },
  maxItems: 10,
} as const;

export const keySchema = {
  type: 'object',
  required: [
    'key_id',
    'name',
    'prefix',
    'scopes',
    'status',
    'created_at',
    'expires_at',
    'last_used_at',
    'disabled_at',
    'rotated_from',
    'created_via',
    'org_id',
    'project_id',
    'created_by',
  ],
  properties: {
    key_id: { type: 'string' },
    name: { type: 'string' },
    prefix: { type: 'string' },
    scopes: { type: 'array', items: { type: 'string' } },
    status: { type: 'string', enum: ['active', 'expiring', 'expired', 'disabled'] },
    created_at: timestamp,
    expires_at: nullableTimestamp,
    last_used_at: nullableTimestamp,
    disabled_at: nullableTimestamp,
    rotated_from: { type: ['string', 'null'] },
    created_via: { type: 'string', enum: ['api', 'cli_login', 'email_code', 'rotation', 'oidc'] },
    org_id: { type: 'string' },
    project_id: { type: 'string' },
    created_by: { type: 'string' },
    /** key lists only: requests made with or verifying the key in the last 24 hours (usage counters) */
    requests_24h: { type: 'integer' },
  },
} as const;

export const createdKeySchema = {
  ...keySchema,
  required: [...keySchema.required, 'api_key'],
  properties: { ...keySchema.properties, api_key: { type: 'string' } },
} as const;

export const userSchema = {
  type: 'object',
  required: ['id', 'email'],
  properties: { id: { type: 'string' }, email: { type: 'string' } },
} as const;

export const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'statusCode', 'category', 'request_id'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        statusCode: { type: 'integer' },
        category: { type: 'string' },
        request_id: { type: 'string' },
        details: {},
      },
    },
  },
} as const;

/** Standard error responses for the OpenAPI document. */
export function errorResponses(...statuses: number[]): Record<number, typeof errorSchema> {
  return Object.fromEntries(statuses.map((s) => [s, errorSchema]));
}

export const keyIdParams = {
  type: 'object',
  required: ['key_id'],
  properties: { key_id: idSchema },
} as const;

/**
 * A `preValidation` hook for a JSON body whose optional `fields` may be sent as `null` (what many
 * clients write for "none"): such a field is dropped, as if it had not been sent, so the schema and
 * the handler only ever see a value or nothing. Other fields keep their own rules.
 */
export function nullMeansAbsent(...fields: string[]) {
  return async function dropNullFields(request: FastifyRequest): Promise<void> {
    const body = request.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return;
    const record = body as Record<string, unknown>;
    for (const field of fields) if (record[field] === null) delete record[field];
  };
}

/**
 * A `preValidation` hook for list and filter routes: an empty query parameter (`?cursor=&limit=`,
 * the specs' own spelling of the parameters, or a client filling a URL template) is one not given,
 * so defaults apply instead of a 400 for a limit, id or date of "".
 */
export async function dropEmptyQueryParams(request: FastifyRequest): Promise<void> {
  const query = request.query as Record<string, unknown>;
  for (const [name, value] of Object.entries(query)) if (value === '') delete query[name];
}
